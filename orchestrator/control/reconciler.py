"""The reconciler: observe, plan, and hand the actions to the executor.

Each tick reads the store and lists the runtime, asks `plan()` what to do, and launches
every action as its own task under a concurrency bound (one for creating accounts, one
for the rest), at most one in flight per agent (or per orphan container). A tick never
waits for slow actions: the next tick simply skips what is still in flight. It decides
nothing itself (`control/plan.py` does) and touches nothing itself (`control/executor.py`
does). Every action is idempotent, so one that was interrupted by a crash is safely decided
and run again after restart.

A full tick reads every live agent and plans for all of them. Where the runtime reports
every change of its workloads by events (`Runtime.view`, Docker), the ticks between two
full ones plan only for the agents that may need it (`control/informer.py`). A full tick
runs whenever the runtime's view was rebuilt from a full list (on Docker every
FLEET_OBSERVE_RESYNC_SECONDS), when the image or the store's health changed, and
throughout a rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from orchestrator.control.executor import Executor
from orchestrator.control.informer import AgentMemory
from orchestrator.control.plan import (
    Action,
    Desired,
    DesiredAgent,
    Policy,
    Provision,
    Restart,
    action_key,
    plan,
)
from orchestrator.control.rollout import Rollout, RolloutPolicy, Target
from orchestrator.lifecycle import UNFINISHED, Phase, RolloutState
from orchestrator.logs import about
from orchestrator.runtime import ObservedAgent, Runtime, RuntimeEvent, RuntimeFailure
from orchestrator.state.errors import DatabaseError
from orchestrator.state.health import StoreHealth
from orchestrator.state.rollouts import RolloutBook, admitted
from orchestrator.state.store import Store
from orchestrator.state.tables import utc
from platform_client import PlatformError

log = logging.getLogger("fleet.reconciler")
# Ticks in a burst of wakes begin BURST_SECONDS apart (`interval` when that is less), after
# the first PACE_BURST, which go at once.
BURST_SECONDS = 0.25
PACE_BURST = 3


class Pace:
    """When woken ticks may begin: a token bucket that holds `burst` ticks and refills one
    every `every` seconds. A burst of wakes (a spawn of 1,000 is thousands of engine
    events and finished actions) gets one tick per `every`, each answering many; a lone
    wake, a crash, gets a tick at once, even right after the interval's own."""

    def __init__(self, every: float, burst: float = PACE_BURST) -> None:
        self.every, self.burst = every, burst
        self._tokens, self._at = burst, -math.inf

    def wait(self, now: float) -> float:
        """Spend a tick that would begin at `now` (seconds, monotonic): how long it waits
        first. A tick that waits runs on credit, so the next begins `every` after it."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) / self.every) - 1
        self._at = now
        return max(0.0, -self._tokens * self.every)


class Reconciler:
    """Runs the observe → plan → act loop against one store and one runtime."""

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        executor: Executor,
        policy: Policy,
        health: StoreHealth,
        *,
        rollouts: RolloutBook,
        rollout_policy: RolloutPolicy | None,
        may_act: Callable[[], bool] = lambda: True,
        platform: bool,
        interval: float,
        concurrency: int,
        now: Callable[[], datetime],
        on_tick: Callable[[float, bool, int], None] = lambda _seconds, _full, _planned: None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.executor = executor
        self.policy = policy
        self.health = health
        self.rollouts = rollouts
        self.rollout_policy = rollout_policy  # None: a new image replaces every agent at once
        self.may_act = may_act  # whether this daemon holds the fleet's lease now
        self.platform = platform
        self.interval = interval
        self.now = now
        # told each tick's duration in seconds, `planned_all` and `planned` (for /metrics:
        # a full tick's cost grows with the fleet, the ticks between full ones should not)
        self.on_tick = on_tick
        self.planned_all = False  # whether the last tick planned for every agent
        self.planned = 0  # how many agents it planned for
        self.listed_once = False
        self.started_at = now()
        self._wake = asyncio.Event()
        # Accounts are created in a lane of their own, beside the workloads' actions. In
        # one queue, a spawn of 1,000 created every account before it started a container
        # or restarted a crashed one (a slow platform held them all), and the machine
        # stood half idle meanwhile: 65–99 % of its two cores busy for the first 8 s of a
        # spawn of 400, 181 % and more with the lanes.
        self._lanes = {lane: asyncio.Semaphore(concurrency) for lane in ("accounts", "workloads")}
        # Actions wait on the engine and the platform, seconds each under load: they have
        # threads of their own, so that they never hold up the store's reads and the
        # heartbeats' writes in the loop's default pool (cpu_count + 4 threads, fewer
        # than `concurrency` on a 2-core machine).
        self._workers = ThreadPoolExecutor(
            len(self._lanes) * concurrency, thread_name_prefix="fleet-action"
        )
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        # Containers the engine reported dead, with their exit codes: its list can still
        # say "running" for a moment after the event, and the restart should not wait.
        self._died: dict[str, int | None] = {}
        self._memory = AgentMemory(policy)
        # What the last full tick planned on (None: the next tick is a full one)
        self._full: tuple[Any, ...] | None = None
        self._resync_asked = False
        # Agents whose workload the runtime reported on, or whose action ended, since the
        # last tick (containers: those of no agent, or an orphan's removal)
        self._touched: set[str] = set()
        self._touched_containers: set[str] = set()

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
        """On the loop: remember a death (until the container starts again), then wake
        the loop."""
        if event.action == "die":
            self._died[event.container_id] = event.exit_code
        elif event.action == "start":
            self._died.pop(event.container_id, None)
        if event.agent_id is None:
            self._touched_containers.add(event.container_id)
        else:
            self._touched.add(event.agent_id)
        self._wake.set()

    def _as_died(self, observed: list[ObservedAgent]) -> list[ObservedAgent]:
        """The list, with the containers reported dead shown as exited."""
        if not self._died:
            return observed
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
        pace = Pace(min(self.interval, BURST_SECONDS))
        while True:
            self._wake.clear()
            started = time.perf_counter()
            try:
                await self.tick()
            except DatabaseError as exc:
                self.health.failed("the reconciler", exc)  # logged once per episode
            except Exception:
                log.exception("reconcile tick failed")
            else:
                self.health.worked("the reconciler")
            self.on_tick(time.perf_counter() - started, self.planned_all, self.planned)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            if wait := pace.wait(time.perf_counter()):
                await asyncio.sleep(wait)

    async def tick(self) -> list[Action]:
        """One observe-plan-act round; returns the actions it launched."""
        self.planned_all, self.planned = False, 0
        # An action that finishes while this tick reads the store and lists the runtime
        # leaves it a stale view of that agent (its container already replaced, say):
        # leave those agents to the next tick, which the finished action wakes.
        if not await asyncio.to_thread(self.may_act):
            self._full = None  # another daemon may have acted meanwhile
            return []
        busy = set(self._in_flight)
        # Silence counts from the daemon's start, and from the store's last failure, at
        # the earliest: an agent could not heartbeat into a daemon that was down or a
        # store that could not take it.
        quiet_since = max(filter(None, [self.started_at, self.health.last_failure_at]))
        # what the runtime reports from here on may be missing from its list: next tick's
        touched, self._touched = self._touched, set()
        containers, self._touched_containers = self._touched_containers, set()
        # A tick that fails from here on leaves what it took unplanned: the next is full.
        last, self._full = self._full, None
        asked, self._resync_asked = self._resync_asked, False
        try:
            image = await asyncio.to_thread(self.runtime.image)
            observed = self._as_died(await asyncio.to_thread(self.runtime.list))
        except RuntimeFailure as exc:
            log.warning("cannot list %s workloads: %s", self.runtime.name, exc)
            return []  # the plan decides nothing without a list
        self.listed_once = True
        rollout = await asyncio.to_thread(self._rollout)
        basis = (self.runtime.view(), image, quiet_since)
        steady = self.rollout_policy is None or (
            rollout is not None and rollout.state != RolloutState.ROLLING
        )
        full = (
            asked or None in basis or basis != last or not steady or _strays(observed, containers)
        )
        changed, beats = self.store.changes.take(), self.store.changes.take_beats()
        now = self.now()
        if full:
            agents = await self._read_all(quiet_since)
            last = basis
            self.planned_all = True
        else:
            if containers:  # an orphan whose removal ended, and failed: to try again
                touched |= {o.agent_id for o in observed if o.container_id in containers} - {None}
            self._memory.beaten(beats)  # (a full read finds them in the rows)
            agents, observed = await self._read_some(changed, touched, observed, quiet_since, now)
        desired = Desired(
            agents=agents,
            spec_hash=self.runtime.spec_hash(image),
            platform=self.platform,
            policy=self.policy,
            restarts_itself=self.runtime.restarts_itself,
            restarts_in_place=self.runtime.restarts_in_place,
            image=image,
            rollout=rollout,
            rollout_policy=self.rollout_policy if full else None,
        )
        actions = plan(desired, observed, now)
        self.planned = len(agents)
        self._memory.planned(agents, now)
        self._full = last
        launched = []
        for action in actions:
            key = action_key(action)
            if key in busy or key in self._in_flight:
                continue
            task = asyncio.create_task(self._run(action), name=key)
            self._in_flight[key] = task
            task.add_done_callback(lambda _t, k=key: self._done(k))
            launched.append(action)
        return launched

    async def _read_all(self, quiet_since: datetime) -> list[DesiredAgent]:
        """Every live agent, read afresh: the memory starts over from them."""
        rows = await asyncio.to_thread(self.store.columns, _COLUMNS, UNFINISHED)
        agents = [_desired(row, quiet_since) for row in rows]
        self._memory.reset(agents)
        return agents

    async def _read_some(
        self,
        changed: set[str],
        touched: set[str],
        observed: list[ObservedAgent],
        quiet_since: datetime,
        now: datetime,
    ) -> tuple[list[DesiredAgent], list[ObservedAgent]]:
        """The agents that may need the plan, and their workloads: the rows changed and
        those whose moment has come are read again; the others (`touched`: the runtime
        reported on them, or their action ended) are as remembered."""
        read = changed | self._memory.due(now)
        if read:
            rows = await asyncio.to_thread(self.store.columns, _COLUMNS, UNFINISHED, sorted(read))
            self._memory.update([_desired(row, quiet_since) for row in rows], read)
        work = read | touched
        known = self._memory.agents
        agents = [self._memory.agent(agent_id) for agent_id in sorted(work) if agent_id in known]
        return agents, [o for o in observed if o.agent_id in work]

    def _rollout(self) -> Rollout | None:
        """The rollout in force, with spec hashes for today's settings."""
        record = self.rollouts.latest()
        if record is None or self.rollout_policy is None:
            return None
        old, new = record.old_image, record.new_image
        return Rollout(
            record.id,
            Target(old, self.runtime.spec_hash(old)),
            Target(new, self.runtime.spec_hash(new)),
            RolloutState(record.state),
            frozenset(admitted(record)),
            utc(record.step_at),
        )

    def _done(self, key: str) -> None:
        self._in_flight.pop(key, None)
        what, _, which = key.partition(":")
        if what == "agent":
            self._touched.add(which)
        elif what == "container":
            self._touched_containers.add(which)
        else:
            self._resync_asked = True  # the rollout moved
        self._wake.set()

    async def drain(self) -> None:
        """Wait for every in-flight action to finish."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _run(self, action: Action) -> None:
        async with self._lanes["accounts" if isinstance(action, Provision) else "workloads"]:
            try:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._workers, self.executor.execute, action)
                if isinstance(action, Restart) and action.container_id is not None:
                    # its death is dealt with, and a container started again in place
                    # is not dead (should its start event lag behind)
                    self._died.pop(action.container_id, None)
            except (RuntimeFailure, PlatformError) as exc:
                log.warning("%s failed: %s", _named(action), exc, extra=_about(action))
            except DatabaseError as exc:
                self.health.failed("the reconciler", exc)
            except Exception:
                log.exception("%s failed", _named(action), extra=_about(action))


# What the plan needs of an agent (`_desired`): read as plain rows, every tick
_COLUMNS = (
    "id",
    "name",
    "phase",
    "container_id",
    "platform_user_id",
    "provision_attempts",
    "next_provision_at",
    "failures",
    "next_restart_at",
    "last_heartbeat_at",
    "container_started_at",
    "healthy_since",
    "node",
    "failure_seen_at",
    "failed_at",
    "failed_spec",
    "reason",
)


def _strays(observed: list[ObservedAgent], containers: set[str]) -> bool:
    """Whether the runtime reported on a workload of no agent: only a full plan sees it."""
    return bool(containers) and any(
        o.agent_id is None and o.container_id in containers for o in observed
    )


def _desired(row: sa.Row, quiet_since: datetime) -> DesiredAgent:
    # unpacked in `_COLUMNS`' order: a Row's attributes are read by name at 1.3 µs each
    (agent_id, name, phase, container_id, user, attempts, next_provision_at, failures,
     next_restart_at, heartbeat_at, started_at, healthy_since, node, failure_seen_at,
     failed_at, failed_spec, reason) = row  # fmt: skip
    heartbeat_at = utc(heartbeat_at)
    signs = [heartbeat_at, utc(started_at), quiet_since]
    return DesiredAgent(
        agent_id,
        name,
        Phase(phase),
        container_id,
        has_account=user is not None,
        provision_attempts=attempts,
        next_provision_at=utc(next_provision_at),
        failures=failures,
        next_restart_at=utc(next_restart_at),
        alive_at=max(sign for sign in signs if sign is not None),
        heartbeat_at=heartbeat_at,
        healthy_since=utc(healthy_since),
        node=node,
        failure_seen_at=utc(failure_seen_at),
        failed_at=utc(failed_at),
        failed_spec=failed_spec,
        reason=reason,
    )


def _named(action: Action) -> str:
    """The action and the agent it works on, if any, as a log line names them."""
    agent = getattr(action, "name", None) or getattr(action, "agent_id", None)
    return f"{type(action).__name__} of agent {agent}" if agent else type(action).__name__


def _about(action: Action) -> dict[str, str]:
    """The log `extra` of an action: the agent it works on, if any."""
    return about(getattr(action, "agent_id", None), getattr(action, "name", None))
