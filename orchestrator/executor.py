"""The reconciler's effectful half: observe, plan, and carry the actions out.

Each tick reads the store and lists the runtime, asks `plan()` what to do, and launches
every action as its own task under a concurrency bound, at most one in flight per agent
(or per orphan container). A tick never waits for slow actions: the next tick simply
skips what is still in flight. Every action is idempotent, so one that was interrupted by
a crash is safely decided and run again after restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orchestrator import keys
from orchestrator.accounts import Accounts
from orchestrator.logs import about
from orchestrator.phases import FINAL, WANTS_CONTAINER, Phase
from orchestrator.reconciler import (
    Action,
    Adopt,
    Desired,
    DesiredAgent,
    Provision,
    Recover,
    RemoveOrphan,
    Replace,
    Restart,
    Retire,
    Start,
    action_key,
    backoff,
    plan,
    restart_delay,
)
from orchestrator.runtime import (
    AgentLaunch,
    ObservedAgent,
    Runtime,
    RuntimeEvent,
    RuntimeFailure,
)
from orchestrator.settings import Settings
from orchestrator.store import Agent, Store, utc
from platform_client import PlatformError, PlatformUnavailable, RateLimited

log = logging.getLogger("fleet.reconciler")


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class Reconciler:
    """Runs the observe → plan → act loop against one store and one runtime."""

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        settings: Settings,
        key: bytes,
        accounts: Accounts | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.settings = settings
        self.key = key
        self.accounts = accounts
        self.now = now
        self.listed_once = False
        # Silence is measured from the daemon's start at the earliest: agents that could
        # not heartbeat while it was down are not unhealthy for that.
        self.started_at = now()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(settings.max_concurrent_actions)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        # Containers the engine reported dead, with their exit codes: its list can still
        # say "running" for a moment after the event, and the restart should not wait.
        self._died: dict[str, int | None] = {}
        # Told each tick's duration in seconds (the daemon feeds its metrics with it).
        self.on_tick: Callable[[float], None] = lambda _seconds: None

    def wake(self) -> None:
        """Run the next tick now instead of at the next interval."""
        self._wake.set()

    def watch(self, stop: threading.Event) -> threading.Thread:
        """Let the runtime's events wake the loop until `stop` is set. A daemon thread does
        the blocking read; the tick's full list stays the truth, events only hasten it."""
        loop = asyncio.get_running_loop()

        def on_event(event: RuntimeEvent) -> None:
            if event.action in ("die", "oom"):
                code = "" if event.exit_code is None else f" (exit code {event.exit_code})"
                log.info(
                    "agent %s: workload %s: %s%s",
                    event.agent_id,
                    event.container_id[:12],
                    event.action,
                    code,
                    extra=about(event.agent_id),
                )
            loop.call_soon_threadsafe(self._note, event)

        thread = threading.Thread(
            target=self.runtime.watch, args=(on_event, stop), name="runtime-events", daemon=True
        )
        thread.start()
        return thread

    def _note(self, event: RuntimeEvent) -> None:
        """On the loop: remember a death, then wake the loop."""
        if event.action == "die":
            self._died[event.container_id] = event.exit_code
        self._wake.set()

    def _as_died(self, observed: list[ObservedAgent]) -> list[ObservedAgent]:
        """The list, with the containers reported dead shown as exited."""
        listed = {o.container_id for o in observed}
        self._died = {cid: code for cid, code in self._died.items() if cid in listed}
        return [
            replace(o, state="exited", exit_code=self._died[o.container_id])
            if o.container_id in self._died and o.alive
            else o
            for o in observed
        ]

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            self._wake.clear()
            started = time.perf_counter()
            try:
                await self.tick()
            except Exception:
                log.exception("reconcile tick failed")
            self.on_tick(time.perf_counter() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.reconcile_interval_seconds)

    async def tick(self) -> list[Action]:
        """One observe-plan-act round; returns the actions it launched."""
        # An action that finishes while this tick reads the store and lists the runtime
        # leaves it a stale view of that agent (its container already replaced, say):
        # leave those agents to the next tick, which the finished action wakes.
        busy = set(self._in_flight)
        agents = await asyncio.to_thread(self.store.agents, set(Phase) - FINAL)
        s = self.settings
        desired = Desired(
            agents=[_desired(a, self.started_at) for a in agents],
            spec_hash=self.runtime.spec_hash(),
            platform=self.accounts is not None,
            heartbeat_timeout=timedelta(seconds=s.heartbeat_timeout_seconds or 30),
            restart_reset=timedelta(seconds=s.restart_reset_seconds),
        )
        try:
            observed = self._as_died(await asyncio.to_thread(self.runtime.list))
        except RuntimeFailure as exc:
            log.warning("cannot list %s workloads: %s", self.runtime.name, exc)
            observed = None
        else:
            self.listed_once = True
        launched = []
        for action in plan(desired, observed, self.now()):
            key = action_key(action)
            if key in busy or key in self._in_flight:
                continue
            task = asyncio.create_task(self._run(action), name=key)
            self._in_flight[key] = task
            task.add_done_callback(lambda _t, k=key: self._done(k))
            launched.append(action)
        return launched

    def _done(self, key: str) -> None:
        self._in_flight.pop(key, None)
        self._wake.set()

    async def drain(self) -> None:
        """Wait for every in-flight action to finish."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _run(self, action: Action) -> None:
        async with self._limit:
            try:
                await asyncio.to_thread(self._execute, action)
            except (RuntimeFailure, PlatformError) as exc:
                log.warning("%s failed: %s", type(action).__name__, exc, extra=_about(action))
            except Exception:
                log.exception("%s failed", type(action).__name__, extra=_about(action))

    # -- action handlers (blocking; run in worker threads) -------------------

    def _execute(self, action: Action) -> None:
        match action:
            case Provision():
                self._provision(action)
            case Start():
                self._start(action.agent_id, action.name)
            case Adopt():
                self._adopt(action)
            case Replace():
                self._replace(action)
            case Restart():
                self._restart(action)
            case Recover():
                self._recover(action)
            case Retire():
                self._retire(action)
            case RemoveOrphan():
                self.runtime.remove(action.container_id)
                log.info("removed orphan %s (%s)", action.name, action.reason)

    def _provision(self, action: Provision) -> None:
        assert self.accounts is not None  # plan() provisions only with a platform
        agent = self.store.get(action.agent_id)
        now = self.now()
        if agent.phase == Phase.PENDING:
            self.store.transition(
                agent.id,
                "provisioning",
                "creating the platform account",
                now,
                phase=Phase.PROVISIONING,
                expect={Phase.PENDING},
            )
        try:
            account = self.accounts.create(agent.id, agent.name, agent.strategy)
        except (PlatformUnavailable, RateLimited) as exc:
            attempts = agent.provision_attempts + 1
            delay = backoff(attempts)
            self.store.transition(
                agent.id,
                "provision_retry",
                f"platform unavailable: {exc}; retry {attempts} in {delay.total_seconds():.0f}s",
                now,
                expect={Phase.PROVISIONING},
                provision_attempts=attempts,
                next_provision_at=now + delay,
                reason=f"platform unavailable: {exc}",
            )
            log.warning(
                "agent %s (%s): platform unavailable, provisioning retries in %s",
                agent.name,
                agent.id,
                delay,
                extra=about(agent.id, agent.name),
            )
            return
        except PlatformError as exc:
            self.store.transition(
                agent.id,
                "failed",
                f"the platform refused the account: {exc}",
                now,
                phase=Phase.FAILED,
                expect={Phase.PROVISIONING},
                reason=f"the platform refused the account: {exc}",
            )
            log.error(
                "agent %s (%s) failed: the platform refused the account: %s",
                agent.name,
                agent.id,
                exc,
                extra=about(agent.id, agent.name),
            )
            return
        fields = {
            "platform_user_id": account.user_id,
            "platform_username": account.username,
            "credentials": account.sealed,
            "next_provision_at": None,
            "reason": None,
        }
        message = f"platform account {account.username}"
        created = self.store.transition(
            agent.id,
            "account_created",
            message,
            self.now(),
            phase=Phase.STARTING,
            expect={Phase.PROVISIONING},
            **fields,
        )
        if created is None:
            # Retired meanwhile: keep the account on record so retirement disables it.
            self.store.transition(
                agent.id, "account_created", message, self.now(), expect={Phase.RETIRING}, **fields
            )
        log.info(
            "agent %s (%s) has platform account %s",
            agent.name,
            agent.id,
            account.username,
            extra=about(agent.id, agent.name),
        )

    def _start(self, agent_id: str, name: str) -> None:
        agent = self.store.get(agent_id)
        launch = AgentLaunch(
            agent_id=agent_id,
            name=name,
            gateway_url=self.settings.gateway_url,
            token=keys.agent_token(self.key, agent_id, agent.token_generation),
            spec_hash=self.runtime.spec_hash(),
        )
        workload = self.runtime.create(launch)
        now = self.now()
        changed = self.store.transition(
            agent_id,
            "container_started",
            f"{self.runtime.name} workload {workload.container_id[:12]}",
            now,
            # A crash loop lasts until the agent stays healthy (see _recover).
            phase=Phase.CRASHLOOP if agent.phase == Phase.CRASHLOOP else Phase.STARTING,
            expect=WANTS_CONTAINER,
            container_id=workload.container_id,
            container_started_at=now,
            healthy_since=None,
            next_restart_at=None,
        )
        if changed is not None:
            log.info(
                "agent %s (%s) started in %s",
                name,
                agent_id,
                workload.container_id[:12],
                extra=about(agent_id, name),
            )

    def _adopt(self, action: Adopt) -> None:
        agent = self.store.get(action.agent_id)
        phase = Phase.STARTING if agent.phase == Phase.PENDING else Phase(agent.phase)
        self.store.transition(
            action.agent_id,
            "adopted",
            f"adopted running workload {action.container_id[:12]}",
            self.now(),
            phase=phase,
            expect=WANTS_CONTAINER,
            container_id=action.container_id,
        )
        log.info(
            "agent %s (%s) adopted %s",
            agent.name,
            agent.id,
            action.container_id[:12],
            extra=about(agent.id, agent.name),
        )

    def _replace(self, action: Replace) -> None:
        self.runtime.remove(action.container_id)
        changed = self.store.transition(
            action.agent_id,
            "container_replaced",
            f"workload {action.container_id[:12]} {action.reason}; starting a new one",
            self.now(),
            expect=WANTS_CONTAINER,
            container_id=None,
        )
        if changed is not None:
            log.info(
                "agent %s (%s): %s, replacing",
                action.name,
                action.agent_id,
                action.reason,
                extra=about(action.agent_id, action.name),
            )
            self._start(action.agent_id, action.name)

    def _restart(self, action: Restart) -> None:
        """Count a failure, clear the failed workload away, then restart now or later."""
        agent = self.store.get(action.agent_id)
        if action.unhealthy:
            self.store.transition(
                agent.id,
                "unhealthy",
                f"{action.reason}; restarting",
                self.now(),
                phase=Phase.UNHEALTHY,
                expect=WANTS_CONTAINER,
            )
            log.warning(
                "agent %s (%s) is unhealthy: %s",
                agent.name,
                agent.id,
                action.reason,
                extra=about(agent.id, agent.name),
            )
        kind, what = "vanished", "its workload disappeared"
        if action.container_id is not None:
            info = None if action.unhealthy else self.runtime.exit_info(action.container_id)
            if info is not None:
                kind, what = ("oom_killed" if info.oom_killed else "exited"), info.describe()
            elif action.unhealthy:
                kind, what = "unhealthy", action.reason
            self.runtime.remove(action.container_id)
        failures = agent.failures + 1
        delay = restart_delay(failures)
        threshold = self.settings.crashloop_threshold
        looping = failures >= threshold
        when = "now" if not delay else f"in {delay.total_seconds():.0f}s"
        alert = None
        if looping and agent.phase != Phase.CRASHLOOP:
            alert = (
                "crashloop",
                f"agent {agent.name} ({agent.id}) is crash-looping: {failures} failures in a "
                f"row, last: {what}. Restarts continue with back-off up to 5 min.",
            )
        phase = Phase.CRASHLOOP if looping else (Phase.STARTING if not delay else Phase.BACKOFF)
        changed = self.store.transition(
            agent.id,
            kind,
            f"{what}; restart {agent.restarts + 1} (failure {failures} in a row) {when}",
            self.now(),
            phase=phase,
            expect=WANTS_CONTAINER,
            alert=alert,
            container_id=None,
            restarts=agent.restarts + 1,
            failures=failures,
            healthy_since=None,
            next_restart_at=self.now() + delay,
        )
        if changed is None:
            return
        log.warning(
            "agent %s (%s) %s; restart %s",
            agent.name,
            agent.id,
            what,
            when,
            extra=about(agent.id, agent.name),
        )
        if not delay:
            self._start(agent.id, agent.name)

    def _recover(self, action: Recover) -> None:
        """Forget the failures of an agent that stayed healthy; a crash loop ends here."""
        agent = self.store.get(action.agent_id)
        looping = agent.phase == Phase.CRASHLOOP
        alert = None
        if looping:
            alert = (
                "recovered",
                f"agent {agent.name} ({agent.id}) recovered: healthy again after "
                f"{agent.failures} failures in a row",
            )
        changed = self.store.transition(
            agent.id,
            "recovered",
            f"healthy for {self.settings.restart_reset_seconds:.0f}s; "
            f"{agent.failures} failures forgotten",
            self.now(),
            phase=Phase.RUNNING if looping else None,
            expect=WANTS_CONTAINER,
            alert=alert,
            failures=0,
        )
        if changed is not None:
            log.info(
                "agent %s (%s): failures forgotten after a healthy stretch",
                agent.name,
                agent.id,
                extra=about(agent.id, agent.name),
            )

    def _retire(self, action: Retire) -> None:
        for container_id in action.container_ids:
            self.runtime.stop(container_id, self.settings.stop_grace_seconds)
            self.runtime.remove(container_id)
        agent = self.store.get(action.agent_id)
        if agent.platform_user_id and self.accounts is not None and agent.credentials:
            self._settle_positions(agent)
        if action.disable_account and agent.platform_user_id and self.accounts is not None:
            self.accounts.disable(agent.platform_user_id)
            self.store.transition(
                agent.id,
                "account_disabled",
                f"platform account {agent.platform_username} disabled",
                self.now(),
                expect={Phase.RETIRING},
            )
        changed = self.store.transition(
            action.agent_id,
            "retired",
            "workload removed, gateway token revoked",
            self.now(),
            phase=Phase.RETIRED,
            expect={Phase.RETIRING},
            container_id=None,
            token_hash=None,
            token_generation=agent.token_generation + 1,
        )
        if changed is not None:
            log.info(
                "agent %s (%s) retired", agent.name, agent.id, extra=about(agent.id, agent.name)
            )

    def _settle_positions(self, agent: Agent) -> None:
        """Sell the retiring agent's positions if asked to; otherwise say what stays open."""
        assert self.accounts is not None and agent.credentials
        deadline = utc(agent.flatten_deadline)
        if deadline is None:
            if agent.open_positions:
                self.store.transition(
                    agent.id,
                    "positions_left",
                    f"{agent.open_positions} open positions left as they are "
                    "(retire with --flatten to sell them)",
                    self.now(),
                    expect={Phase.RETIRING},
                )
            return
        remaining = (deadline - self.now()).total_seconds()
        result = self.accounts.flatten(agent.id, agent.credentials, remaining)
        self.store.transition(
            agent.id,
            "flattened" if not result.left else "flatten_incomplete",
            result.describe(),
            self.now(),
            expect={Phase.RETIRING},
        )
        log.info(
            "agent %s (%s): %s",
            agent.name,
            agent.id,
            result.describe(),
            extra=about(agent.id, agent.name),
        )


def _desired(agent: Agent, daemon_started_at: datetime) -> DesiredAgent:
    signs = [utc(agent.last_heartbeat_at), utc(agent.container_started_at), daemon_started_at]
    return DesiredAgent(
        agent.id,
        agent.name,
        Phase(agent.phase),
        agent.container_id,
        has_account=agent.platform_user_id is not None,
        next_provision_at=utc(agent.next_provision_at),
        failures=agent.failures,
        next_restart_at=utc(agent.next_restart_at),
        alive_at=max(sign for sign in signs if sign is not None),
        healthy_since=utc(agent.healthy_since),
    )


def _about(action: Action) -> dict[str, str]:
    """The log `extra` of an action: the agent it works on, if any."""
    return about(getattr(action, "agent_id", None), getattr(action, "name", None))
