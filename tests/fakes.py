"""In-memory doubles at the ports, for fast policy tests: a `Runtime` that keeps its
workloads in a dict, and a clock that moves only when told. They implement the same
Protocol as the real backends; the contract itself is tested against Docker."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from orchestrator.control.accounts import Accounts
from orchestrator.control.executor import Executor, Launching
from orchestrator.control.plan import Policy
from orchestrator.control.reconciler import Reconciler
from orchestrator.control.rollout import RolloutPolicy
from orchestrator.runtime import (
    AgentLaunch,
    ExitInfo,
    ObservedAgent,
    Runtime,
    RuntimeEvent,
    RuntimeFailure,
)
from orchestrator.state.health import StoreHealth
from orchestrator.state.orders import OrderBook
from orchestrator.state.rollouts import RolloutBook
from orchestrator.state.store import Store


@dataclass
class Clock:
    """A clock that only moves when the test says so."""

    moment: datetime = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> datetime:
        self.moment += timedelta(seconds=seconds)
        return self.moment


class FakeRuntime:
    """The Runtime port in memory; `crash`, `vanish`, `refuse_starts` and (for a runtime
    that restarts by itself, as Swarm does) `fail_task` and `move` inject faults. With
    `events`, it reports every change of a workload to `watch`, as Docker does, so the
    reconciler plans between full reads only for the agents that may need it."""

    name = "fake"

    def __init__(
        self, restarts_itself: bool = False, restarts_in_place: bool = False, events: bool = False
    ) -> None:
        self.restarts_itself = restarts_itself
        self.restarts_in_place = restarts_in_place
        self.events = events
        self.lists = 1  # counts the full lists of a runtime with events: `relisted`
        self.watching = threading.Event()
        self._on_event: Callable[[RuntimeEvent], None] = lambda _event: None
        self.tagged = "image-1"  # the image the agents' tag names; retag to roll out
        self.workloads: dict[str, ObservedAgent] = {}
        self.exits: dict[str, ExitInfo] = {}
        self.images: dict[str, str] = {}  # container id -> the image it runs
        self.created = 0
        self.refusal: str | None = None
        self.removals_refused = False
        self.listing_fails = False
        self._ids = itertools.count(1)

    # -- the port -----------------------------------------------------------

    def image(self) -> str:
        return self.tagged

    def spec_hash(self, image: str) -> str:
        return f"spec-of-{image}"

    def replace(self, container_id: str, launch: AgentLaunch) -> ObservedAgent:
        self.remove(container_id)
        return self.create(launch)

    def create(self, launch: AgentLaunch) -> ObservedAgent:
        if self.refusal:
            raise RuntimeFailure(self.refusal)
        for workload in self.workloads.values():
            if workload.name == launch.name:  # the name is taken: adopt, never duplicate
                started = replace(workload, state="running")
                self.workloads[workload.container_id] = started
                return started
        workload = ObservedAgent(
            f"c-{next(self._ids)}", launch.agent_id, launch.name, "running", None, launch.spec_hash
        )
        self.images[workload.container_id] = launch.image
        self.workloads[workload.container_id] = workload
        self.created += 1
        self._report("start", workload)
        return workload

    def restart(self, container_id: str) -> None:
        if self.refusal:
            raise RuntimeFailure(self.refusal)
        if container_id not in self.workloads:
            raise RuntimeFailure(f"{container_id} is gone")
        self.workloads[container_id] = replace(
            self.workloads[container_id], state="running", exit_code=None
        )
        self._report("start", self.workloads[container_id])

    def view(self) -> int | None:
        return self.lists if self.events else None

    def list(self) -> list[ObservedAgent]:
        if self.listing_fails:
            raise RuntimeFailure("the engine did not answer")
        return list(self.workloads.values())

    def stop(self, container_id: str, grace_seconds: float) -> None:
        if container_id in self.workloads:
            self.workloads[container_id] = replace(
                self.workloads[container_id], state="exited", exit_code=0
            )
            self._report("die", self.workloads[container_id])

    def remove(self, container_id: str) -> None:
        if self.removals_refused:
            raise RuntimeFailure("the engine cannot remove it now")
        if (gone := self.workloads.pop(container_id, None)) is not None:
            self._report("destroy", gone)

    def exit_info(self, container_id: str) -> ExitInfo | None:
        return self.exits.get(container_id) if container_id in self.workloads else None

    def watch(self, on_event: Callable[[RuntimeEvent], None], stop: threading.Event) -> None:
        self._on_event = on_event
        self.watching.set()
        stop.wait()

    def logs(self, name: str, tail: int | None, follow: bool) -> Iterator[bytes]:
        raise RuntimeFailure(f"no logs for {name}")

    def close(self) -> None:
        return None

    # -- faults -------------------------------------------------------------

    def running(self, agent_id: str) -> ObservedAgent:
        (workload,) = [w for w in self.workloads.values() if w.agent_id == agent_id]
        return workload

    def crash(self, agent_id: str, exit_code: int = 1, oom: bool = False) -> str:
        """The agent's workload exits; returns its container id."""
        workload = self.running(agent_id)
        self.workloads[workload.container_id] = replace(
            workload, state="exited", exit_code=exit_code
        )
        self.exits[workload.container_id] = ExitInfo(exit_code, oom_killed=oom)
        self._report("die", self.workloads[workload.container_id])
        return workload.container_id

    def fail_task(self, agent_id: str, at: datetime, exit_code: int = 1) -> None:
        """The workload's task fails at `at` and its runtime restarts it by itself."""
        workload = self.running(agent_id)
        failed = replace(workload, failed_at=(*workload.failed_at, at))
        self.workloads[workload.container_id] = failed
        self.exits[workload.container_id] = ExitInfo(exit_code)

    def move(self, agent_id: str, node: str) -> None:
        """The runtime (re)schedules the agent's workload onto `node`."""
        workload = self.running(agent_id)
        placed = replace(workload, node=node, state="running", waiting=None)
        self.workloads[workload.container_id] = placed

    def unplace(self, agent_id: str, why: str) -> None:
        """The runtime has the agent's workload to place again, and no node takes it."""
        workload = self.running(agent_id)
        waiting = replace(workload, node=None, state="restarting", waiting=why)
        self.workloads[workload.container_id] = waiting

    def vanish(self, agent_id: str) -> None:
        """The agent's workload is removed behind our back."""
        self.remove(self.running(agent_id).container_id)

    def duplicate(self, agent_id: str) -> str:
        """A second workload of the agent appears (left by an earlier daemon, say)."""
        stray = replace(self.running(agent_id), container_id=f"c-{next(self._ids)}")
        self.workloads[stray.container_id] = stray
        self._report("start", stray)
        return stray.container_id

    def refuse_starts(self, reason: str | None) -> None:
        """Every create fails with `reason` (None: creates work again)."""
        self.refusal = reason

    def relisted(self) -> None:
        """The runtime's view was rebuilt from a full list (Docker's periodic resync)."""
        self.lists += 1

    def _report(self, action: str, workload: ObservedAgent) -> None:
        if self.events:
            event = RuntimeEvent(
                action, workload.container_id, workload.agent_id, workload.exit_code
            )
            self._on_event(event)


def reconciler(
    store: Store,
    runtime: Runtime,
    now: Callable[[], datetime],
    *,
    threshold: int = 3,
    platform: Accounts | None = None,
    rollouts: RolloutPolicy | None = None,
) -> Reconciler:
    """A real reconciler and executor over `store` and `runtime`, on the clock `now`."""
    executor = Executor(
        store,
        OrderBook(store),
        RolloutBook(store),
        runtime,
        platform,
        Launching("http://127.0.0.1:9", b"k" * 32, stop_grace_seconds=0, restart_reset_seconds=600),
        now,
    )
    policy = Policy(
        heartbeat_timeout=timedelta(seconds=30),
        restart_reset=timedelta(seconds=600),
        crashloop_threshold=threshold,
    )
    return Reconciler(
        store,
        runtime,
        executor,
        policy,
        StoreHealth(now),
        rollouts=RolloutBook(store),
        rollout_policy=rollouts,
        platform=platform is not None,
        interval=1,
        concurrency=4,
        now=now,
    )


class Ticker:
    """Runs a reconciler's ticks on one event loop, each to the end of what it launched."""

    def __init__(self, loop: Reconciler) -> None:
        self.loop = loop
        self.runner = asyncio.Runner()
        self.stop = threading.Event()
        runtime = loop.runtime
        if isinstance(runtime, FakeRuntime) and runtime.events:

            async def watch() -> None:
                loop.watch(self.stop)

            self.runner.run(watch())
            runtime.watching.wait()

    def tick(self) -> list:
        """One tick and every action it launched, to the end; returns the actions."""

        async def once() -> list:
            launched = await self.loop.tick()
            await self.loop.drain()
            return launched

        return self.runner.run(once())

    def close(self) -> None:
        self.stop.set()
        self.runner.close()
