"""Carries out the plan's actions and records each outcome; decides nothing.

Every handler is blocking (it runs in a worker thread) and idempotent: it may run twice,
after a retry or a crash half-way, because each store write is guarded by the phase the
plan saw (`expect`), a create adopts a workload that already has the agent's name, and an
account is created under the agent's id as its idempotency key. What a failure leads to
(back-off, crash loop, alert, provisioning retry) arrives already decided in the action.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from orchestrator import keys
from orchestrator.control.accounts import Accounts
from orchestrator.control.plan import (
    UNPLACED,
    Action,
    Adopt,
    AfterFailure,
    CountFailures,
    Place,
    Provision,
    Recover,
    RemoveOrphan,
    Replace,
    Restart,
    Retire,
    Start,
)
from orchestrator.control.provisioning import provision
from orchestrator.control.retirement import Retirement
from orchestrator.control.rollout import BeginRollout, StepRollout
from orchestrator.lifecycle import WANTS_CONTAINER, AlertKind, EventKind, Phase
from orchestrator.logs import about
from orchestrator.runtime import AgentLaunch, Runtime, RuntimeFailure
from orchestrator.state.orders import OrderBook
from orchestrator.state.rollouts import RolloutBook, short
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent

log = logging.getLogger("fleet.reconciler")


@dataclass(frozen=True)
class Launching:
    """What every workload this daemon starts shares: where agents reach the gateway, the
    key their tokens derive from, and how long a stopping agent gets."""

    gateway_url: str
    key: bytes
    stop_grace_seconds: float
    restart_reset_seconds: float


class Executor:
    """Runs one action against the runtime, the platform and the store."""

    def __init__(
        self,
        store: Store,
        book: OrderBook,
        rollouts: RolloutBook,
        runtime: Runtime,
        accounts: Accounts | None,
        launching: Launching,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.book = book
        self.rollouts = rollouts
        self.runtime = runtime
        self.accounts = accounts
        self.launching = launching
        self.now = now
        self.retirement = Retirement(
            store, book, runtime, accounts, now, launching.stop_grace_seconds
        )

    def execute(self, action: Action) -> None:
        """Carry out one action (blocking)."""
        match action:
            case Provision():
                assert self.accounts is not None  # plan() provisions only with a platform
                provision(self.store, self.accounts, action, self.now())
            case Start():
                self._start(action)
            case Adopt():
                self._adopt(action)
            case Replace():
                self._replace(action)
            case Restart():
                self._restart(action)
            case CountFailures():
                self._count_failures(action)
            case Place():
                self._place(action)
            case Recover():
                self._recover(action)
            case Retire():
                self.retirement.retire(action)
            case RemoveOrphan():
                self.runtime.remove(action.container_id)
                log.info("removed orphan %s (%s)", action.name, action.reason)
            case BeginRollout():
                self._begin_rollout(action)
            case StepRollout():
                if self.rollouts.step(
                    action.rollout_id,
                    action.state,
                    list(action.admitted),
                    action.reason,
                    self.now(),
                ):
                    log.info(
                        "rollout %s: %s, %s agents admitted%s",
                        action.rollout_id,
                        action.state,
                        len(action.admitted),
                        f" ({action.reason})" if action.reason else "",
                    )

    def _begin_rollout(self, action: BeginRollout) -> None:
        record = self.rollouts.begin(
            action.old_image, action.new_image, list(action.admitted), self.now()
        )
        if action.old_image != action.new_image:
            log.info(
                "rollout %s: agent image %s -> %s, canary %s",
                record.id,
                short(action.old_image),
                short(action.new_image),
                len(action.admitted),
            )

    def _record(self, agent: Agent, kind: EventKind, message: str, **fields: object) -> bool:
        """Write one transition of `agent`; False when it went stale meanwhile."""
        return self.store.transition(agent.id, kind, message, self.now(), **fields) is not None

    def _launch(self, agent: Agent, image: str) -> AgentLaunch:
        return AgentLaunch(
            agent_id=agent.id,
            name=agent.name,
            gateway_url=self.launching.gateway_url,
            token=keys.agent_token(self.launching.key, agent.id, agent.token_generation),
            spec_hash=self.runtime.spec_hash(image),
            image=image,
        )

    def _start(self, action: Start) -> None:
        agent = self.store.get(action.agent_id)
        launch = self._launch(agent, action.image)
        try:
            workload = self.runtime.create(launch)
        except RuntimeFailure as exc:
            why = f"start failed: {exc}"
            self._fail(
                agent,
                EventKind.START_FAILED,
                why,
                action.on_failure,
                reason=why,
                failed_spec=launch.spec_hash,
            )
            return
        self._started(agent, action.phase, workload.container_id, "started")

    def _started(self, agent: Agent, phase: Phase, container_id: str, how: str) -> None:
        """Record that the agent's workload `container_id` was started (`how`)."""
        started = self._record(
            agent,
            EventKind.CONTAINER_STARTED,
            f"{self.runtime.name} workload {container_id[:12]} {how}",
            phase=phase,
            expect=WANTS_CONTAINER,
            container_id=container_id,
            container_started_at=self.now(),
            healthy_since=None,
            next_restart_at=None,
            reason=None,  # a failed start's: the timeline keeps it
        )
        if started:
            log.info(
                "agent %s (%s) %s in %s",
                agent.name,
                agent.id,
                how,
                container_id[:12],
                extra=about(agent.id, agent.name),
            )

    def _fail(
        self,
        agent: Agent,
        kind: EventKind,
        what: str,
        then: AfterFailure,
        restarted: int = 0,
        **fields: object,
    ) -> bool:
        """Record a failure of the agent's workload with its decided consequence (and
        `fields`, e.g. the reason a start failed)."""
        when = f"in {wait:.0f}s" if (wait := then.delay.total_seconds()) else "now"
        alert = None
        if then.alert is AlertKind.CRASHLOOP:
            said = f"{then.failures} failures in a row, last: {what}. {self._restarts_continue()}"
            alert = (then.alert, f"agent {agent.name} ({agent.id}) is crash-looping: {said}")
        changes: dict[str, object] = {
            "container_id": None,
            "restarts": agent.restarts + restarted,
            "failures": then.failures,
            "healthy_since": None,
            "next_restart_at": self.now() + then.delay,
            "failed_at": self.now(),
        }
        # A start that fails is no restart: its retry is the same restart, tried again.
        attempt = f"restart {agent.restarts + restarted}" if restarted else "next try"
        recorded = self._record(
            agent,
            kind,
            f"{what}; {attempt} (failure {then.failures} in a row) {when}",
            phase=then.phase,
            expect=WANTS_CONTAINER,
            alert=alert,
            **(changes | fields),
        )
        if recorded:
            log.warning(
                "agent %s (%s) %s; restart %s",
                agent.name,
                agent.id,
                what,
                when,
                extra=about(agent.id, agent.name),
            )
        return recorded

    def _adopt(self, action: Adopt) -> None:
        agent = self.store.get(action.agent_id)
        adopted = self._record(
            agent,
            EventKind.ADOPTED,
            f"adopted running workload {action.container_id[:12]}",
            phase=action.phase,
            expect=WANTS_CONTAINER,
            container_id=action.container_id,
            next_restart_at=None,
            reason=None,
        )
        if adopted:
            log.info(
                "agent %s (%s) adopted %s",
                agent.name,
                agent.id,
                action.container_id[:12],
                extra=about(agent.id, agent.name),
            )

    def _replace(self, action: Replace) -> None:
        """Give the agent its new spec: a new workload, or its own updated in place."""
        agent = self.store.get(action.agent_id)
        start = action.start
        launch = self._launch(agent, start.image)
        try:
            workload = self.runtime.replace(action.container_id, launch)
        except RuntimeFailure as exc:
            why = f"replacing its workload failed: {exc}"
            self._fail(
                agent,
                EventKind.START_FAILED,
                why,
                start.on_failure,
                reason=why,
                failed_spec=launch.spec_hash,
            )
            return
        replaced = self._record(
            agent,
            EventKind.CONTAINER_REPLACED,
            f"workload {action.container_id[:12]} {action.reason}; "
            f"now {self.runtime.name} workload {workload.container_id[:12]}",
            phase=start.phase,
            expect=WANTS_CONTAINER,
            container_id=workload.container_id,
            container_started_at=self.now(),
            healthy_since=None,
            next_restart_at=None,
            reason=None,
        )
        if replaced:
            log.info(
                "agent %s (%s): %s, replaced",
                agent.name,
                agent.id,
                action.reason,
                extra=about(agent.id, agent.name),
            )

    def _restart(self, action: Restart) -> None:
        """Record the failure, clear the failed workload away (or keep it, to start it
        again in place), then start if it is time."""
        agent = self.store.get(action.agent_id)
        kind, what, in_place = action.cause, action.reason, action.in_place
        if action.container_id is not None:
            if kind == EventKind.EXITED:
                info = self.runtime.exit_info(action.container_id)
                if info is None:  # gone, or being removed, while we looked
                    kind, what, in_place = EventKind.VANISHED, "its workload disappeared", False
                else:
                    kind = EventKind.OOM_KILLED if info.oom_killed else EventKind.EXITED
                    what = info.describe()
            if not in_place:
                self.runtime.remove(action.container_id)
        failed = self._fail(
            agent, kind, what, action.then, restarted=1, failed_spec=action.spec_hash
        )
        if not failed or action.start is None:
            return
        if in_place and action.container_id is not None:
            self._start_again(agent, action.container_id, action.start)
        else:
            self._start(action.start)

    def _start_again(self, agent: Agent, container_id: str, start: Start) -> None:
        """Start the agent's exited workload again as it is; if it cannot be (it went
        meanwhile, say), remove it and start a new one."""
        try:
            self.runtime.restart(container_id)
        except RuntimeFailure as exc:
            log.info("%s: %s; starting a new one", start.name, exc, extra=about(start.agent_id))
            self.runtime.remove(container_id)
            self._start(start)
            return
        self._started(agent, start.phase, container_id, "started again")

    def _restarts_continue(self) -> str:
        if self.runtime.restarts_itself:
            return f"{self.runtime.name} keeps restarting it."
        return "Restarts continue with back-off up to 5 min."

    def _count_failures(self, action: CountFailures) -> None:
        """Record failures the runtime has already restarted by itself; touch nothing."""
        agent = self.store.get(action.agent_id)
        info = self.runtime.exit_info(action.container_id)
        kind = EventKind.OOM_KILLED if info and info.oom_killed else EventKind.EXITED
        what = info.describe() if info else "its task failed"
        if action.count > 1:
            what = f"{action.count} tasks failed, the last {what}"
        self._fail(
            agent,
            kind,
            f"{what}; {self.runtime.name} restarts it",
            action.then,
            restarted=action.count,
            container_id=action.container_id,
            failure_seen_at=action.last_at,
            failed_spec=action.spec_hash,
        )

    def _place(self, action: Place) -> None:
        agent = self.store.get(action.agent_id)
        if why := action.unplaced:
            self._record(agent, EventKind.UNPLACED, why, expect=WANTS_CONTAINER, reason=why)
            return
        was_unplaced = (agent.reason or "").startswith(UNPLACED)
        self._record(
            agent,
            EventKind.PLACED,
            f"runs on node {action.node}",
            expect=WANTS_CONTAINER,
            node=action.node,
            **({"reason": None} if was_unplaced else {}),
        )

    def _recover(self, action: Recover) -> None:
        agent = self.store.get(action.agent_id)
        alert = None
        if action.ends_crashloop:
            alert = (
                AlertKind.RECOVERED,
                f"agent {agent.name} ({agent.id}) recovered: healthy again after "
                f"{agent.failures} failures in a row",
            )
        recovered = self._record(
            agent,
            EventKind.RECOVERED,
            f"healthy for {self.launching.restart_reset_seconds:.0f}s; "
            f"{agent.failures} failures forgotten",
            phase=Phase.RUNNING if action.ends_crashloop else None,
            expect=WANTS_CONTAINER,
            alert=alert,
            failures=0,
        )
        if recovered:
            log.info(
                "agent %s (%s): failures forgotten after a healthy stretch",
                agent.name,
                agent.id,
                extra=about(agent.id, agent.name),
            )
