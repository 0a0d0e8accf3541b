"""Retirement: stop an agent's workloads, settle its positions, disable its platform account,
revoke its gateway token and mark it retired; or say what it waits for.

Idempotent like every handler: the plan sends `Retire` every round until the agent is
retired, so each step may run again, after a crash or a platform that did not answer.
What happens once in a retirement (what became of the positions, the account's disabling)
is recorded once: a step whose entry is on the timeline since the retirement was asked
for is not taken again. A platform that does not answer, or refuses, leaves the agent
retiring with the reason on its row and on its timeline (again when the reason changes, at
most every five minutes), and the next round tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from orchestrator.control.accounts import Accounts, placed
from orchestrator.control.plan import Retire
from orchestrator.lifecycle import SETTLEMENTS, EventKind, Phase
from orchestrator.logs import about
from orchestrator.runtime import Runtime
from orchestrator.state.orders import OrderBook
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent, AgentEvent, utc
from platform_client import PlatformError

log = logging.getLogger("fleet.reconciler")
WAITING = "waiting for the platform: "  # the reason of a retirement the platform holds up
NEW_REASON_AFTER = timedelta(minutes=5)  # a platform whose answer flaps writes no more often


class Retirement:
    """Carries out `Retire` actions against the runtime, the platform and the store."""

    def __init__(
        self,
        store: Store,
        book: OrderBook,
        runtime: Runtime,
        accounts: Accounts | None,
        now: Callable[[], datetime],
        stop_grace_seconds: float,
    ) -> None:
        self.store = store
        self.book = book
        self.runtime = runtime
        self.accounts = accounts
        self.now = now
        self.stop_grace_seconds = stop_grace_seconds

    def retire(self, action: Retire) -> None:
        """Retire one agent, or record why it still waits (blocking)."""
        for container_id in action.container_ids:
            self.runtime.stop(container_id, self.stop_grace_seconds)
            self.runtime.remove(container_id)
        agent = self.store.get(action.agent_id)
        since = self._since_request(agent)
        done = {EventKind(event.kind) for event in since}
        account = agent.platform_user_id if self.accounts is not None else None
        try:
            if account and agent.credentials and not done & SETTLEMENTS:
                self._settle_positions(agent)
            if account and action.disable_account and EventKind.ACCOUNT_DISABLED not in done:
                assert self.accounts is not None
                self.accounts.disable(account)
                self._record(
                    agent,
                    EventKind.ACCOUNT_DISABLED,
                    f"platform account {agent.platform_username} disabled",
                )
        except PlatformError as exc:
            waits = [e for e in since if e.kind == EventKind.RETIRE_WAITING]
            self._waiting(agent, exc, utc(waits[-1].at) if waits else None)
            return
        waited = agent.reason is not None and agent.reason.startswith(WAITING)
        retired = self._record(
            agent,
            EventKind.RETIRED,
            "workload removed, gateway token revoked",
            phase=Phase.RETIRED,
            container_id=None,
            token_hash=None,
            token_generation=agent.token_generation + 1,
            **({"reason": None} if waited else {}),
        )
        if retired:
            log.info(
                "agent %s (%s) retired", agent.name, agent.id, extra=about(agent.id, agent.name)
            )

    def _record(self, agent: Agent, kind: EventKind, message: str, **fields: object) -> bool:
        """Write one transition of the retiring `agent`; False when it went stale meanwhile."""
        changed = self.store.transition(
            agent.id, kind, message, self.now(), expect={Phase.RETIRING}, **fields
        )
        return changed is not None

    def _since_request(self, agent: Agent) -> list[AgentEvent]:
        """The agent's timeline since its retirement was asked for."""
        timeline = self.store.events(agent.id)
        asked = [i for i, e in enumerate(timeline) if e.kind == EventKind.RETIRE_REQUESTED]
        return timeline[asked[-1] + 1 :] if asked else timeline

    def _waiting(self, agent: Agent, exc: PlatformError, last: datetime | None) -> None:
        """Say that the platform holds the retirement up: at the first try that fails,
        then when the reason changes (at most every NEW_REASON_AFTER)."""
        why = f"{WAITING}{exc}"
        if why == agent.reason or (last is not None and self.now() - last < NEW_REASON_AFTER):
            return
        message = f"{why}; retirement goes on when it answers"
        if self._record(agent, EventKind.RETIRE_WAITING, message, reason=why):
            log.warning(
                "agent %s (%s) retiring, %s",
                agent.name,
                agent.id,
                message,
                extra=about(agent.id, agent.name),
            )

    def _settle_positions(self, agent: Agent) -> None:
        """Sell the retiring agent's positions if asked to; otherwise say what stays open."""
        assert self.accounts is not None and agent.credentials
        deadline = utc(agent.flatten_deadline)
        if deadline is None:
            if agent.open_positions:
                self._record(
                    agent,
                    EventKind.POSITIONS_LEFT,
                    f"{agent.open_positions} open positions left as they are "
                    "(retire with --flatten to sell them)",
                )
            return
        remaining = max(deadline - self.now(), timedelta(0)).total_seconds()
        result = self.accounts.flatten(agent.id, agent.credentials, remaining)
        for order in result.sold:  # the closing sales belong to the agent's history
            if (kept := placed(order)) is not None:
                self.book.record(agent.id, kept, "closing sale (retire --flatten)", self.now())
        kind = EventKind.FLATTENED if not result.left else EventKind.FLATTEN_INCOMPLETE
        self._record(agent, kind, result.describe())
        log.info(
            "agent %s (%s): %s",
            agent.name,
            agent.id,
            result.describe(),
            extra=about(agent.id, agent.name),
        )
