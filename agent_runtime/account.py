"""The agent's own platform account: a logged-in session and the heartbeat's account state.

The trading cycle submits orders through `session`; this module only logs in and reports
equity, cash and positions. A platform that is down or refuses us never ends the agent:
the error is reported in the heartbeat.
"""

from __future__ import annotations

import logging

from agent_runtime.contract import PlatformAccess
from platform_client import PlatformClient, PlatformError, TradingSession

log = logging.getLogger("agent.account")


class AccountLink:
    """A logged-in session on the platform, re-logging in when the token expires."""

    def __init__(self, platform: PlatformAccess, client: PlatformClient) -> None:
        self.client = client
        self.session = TradingSession(client, platform.username, platform.password)

    def login(self) -> str | None:
        """Log in; returns the error to report, or None."""
        try:
            self.session.login()
        except PlatformError as exc:
            log.warning("platform login failed: %s", exc)
            return f"platform login failed: {exc}"
        log.info("logged in to the platform")
        return None

    def report(self) -> tuple[dict, str | None]:
        """Equity, cash and positions for the heartbeat, and the error if there was one."""
        try:
            portfolio = self.session.call(self.client.portfolio)
        except PlatformError as exc:
            return {}, f"platform: {exc}"
        positions = [
            {"symbol": p.symbol, "qty": p.qty, "market_value": p.market_value}
            for p in portfolio.positions
        ]
        return {"equity": portfolio.equity, "cash": portfolio.cash, "positions": positions}, None

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
