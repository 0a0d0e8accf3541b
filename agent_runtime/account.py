"""The agent's own platform account: a logged-in session and the heartbeat's account state.

The trading cycle submits orders through `session`; this module only logs in and reports
equity, cash and positions. A platform that is down or refuses us never ends the agent:
the error is reported in the heartbeat.

The account is not read for every heartbeat: a fleet's heartbeats would then double the
platform's load and the orchestrator's. It is read again after the agent's own orders, and
otherwise every `REPORT_EVERY` heartbeats (a minute at the default 10 s cycle); a
portfolio the trading cycle has just read serves as it is. An account that nothing but the
agent's own (market) orders can change, because it holds nothing or because the market is
closed, is read only every `STILL_EVERY` heartbeats: an idle fleet hardly calls.
"""

from __future__ import annotations

import logging

from agent_runtime.contract import PlatformAccess
from platform_client import PlatformClient, PlatformError, Portfolio, TradingSession

log = logging.getLogger("agent.account")
REPORT_EVERY = 6  # heartbeats between two reads of an unchanged account
STILL_EVERY = 30  # the same, while no price can move it (5 min at the default cycle)


class AccountLink:
    """A logged-in session on the platform, re-logging in when the token expires."""

    def __init__(self, platform: PlatformAccess, client: PlatformClient) -> None:
        self.client = client
        self.session = TradingSession(client, platform.username, platform.password)
        self.last: dict | None = None  # the last report read, and the heartbeats it has served
        self.served = 0

    def login(self) -> str | None:
        """Log in; returns the error to report, or None."""
        try:
            self.session.login()
        except PlatformError as exc:
            log.warning("platform login failed: %s", exc)
            return f"platform login failed: {exc}"
        log.info("logged in to the platform")
        return None

    def report(
        self, read: Portfolio | None = None, changed: bool = False, market_open: bool = True
    ) -> tuple[dict, str | None]:
        """Equity, cash and positions for the heartbeat, and the error if there was one.
        `read` is a portfolio just read; `changed` says the agent's orders went out since;
        `market_open` says whether prices move now."""
        if read is None or changed:
            last = self.last
            still = last is not None and not (market_open and last["positions"])
            due = STILL_EVERY if still else REPORT_EVERY
            if last is not None and not changed and self.served < due:
                self.served += 1
                return last, None
            try:
                read = self.session.call(self.client.portfolio)
            except PlatformError as exc:
                self.last = None  # read again next time
                return {}, f"platform: {exc}"
        positions = [
            {"symbol": p.symbol, "qty": p.qty, "market_value": p.market_value}
            for p in read.positions
        ]
        self.last, self.served = (
            {"equity": read.equity, "cash": read.cash, "positions": positions},
            1,
        )
        return self.last, None

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
