"""The reconciler's loop against a real store and the process runtime."""

import asyncio
import os
import signal
import threading
from dataclasses import replace
from datetime import UTC, datetime

from orchestrator.control.plan import Restart
from orchestrator.daemon import utc_now
from orchestrator.lifecycle import EventKind, Phase
from orchestrator.runtime import RuntimeEvent
from orchestrator.runtime.process import ProcessRuntime
from orchestrator.settings import Settings
from orchestrator.tools.harness import wait_until
from tests.fakes import reconciler

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def spawn_one(store):
    (agent,), _ = store.spawn("spawn-key-1", [{"strategy": "contrarian"}], lambda a: a, NOW)
    return agent


class HeldRuntime(ProcessRuntime):
    """The process runtime with hooks: `remove` waits for `release`, `list` first runs
    `before_list` (to finish other work while a tick is half-way) and can lag."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.removing = threading.Event()
        self.release = threading.Event()
        self.before_list = lambda: None
        self.lagging = False  # report every workload as running, as a slow list would

    def remove(self, container_id: str) -> None:
        self.removing.set()
        self.release.wait(30)
        super().remove(container_id)

    def list(self):
        self.before_list()
        listed = super().list()
        return [replace(w, state="running") for w in listed] if self.lagging else listed


def test_an_action_finishing_mid_tick_is_not_counted_twice(store, tmp_path):
    """A tick that read the store while a restart was in flight must not act on that
    agent: by the time it lists, the old container is gone and it would look vanished."""
    settings = Settings(state_dir=tmp_path, gateway_url="http://127.0.0.1:9")
    runtime = HeldRuntime(settings)
    runtime.release.set()
    loop = reconciler(store, runtime, utc_now)
    agent = spawn_one(store)
    store.transition(agent.id, EventKind.EXITED, "an earlier crash", NOW, failures=1)

    async def scenario() -> list:
        await loop.tick()  # starts it
        await loop.drain()
        (workload,) = runtime.list()
        os.kill(int(workload.container_id.removeprefix("pid-")), signal.SIGKILL)
        wait_until(lambda: not runtime.list()[0].alive, "the agent's exit", every=0.05)

        runtime.release.clear()
        first = await loop.tick()
        assert [type(a) for a in first] == [Restart]
        await asyncio.to_thread(runtime.removing.wait, 30)

        def finish_the_restart() -> None:  # after the store read, before the list
            runtime.release.set()
            wait_until(lambda: not loop._in_flight, "the restart", every=0.01)

        runtime.before_list = finish_the_restart
        second = await loop.tick()
        await loop.drain()
        return second

    try:
        assert asyncio.run(scenario()) == []
    finally:
        for workload in ProcessRuntime.list(runtime):
            ProcessRuntime.remove(runtime, workload.container_id)
    after = store.get(agent.id)
    assert (after.failures, after.restarts, after.phase) == (2, 1, Phase.BACKOFF)
    assert [e.kind for e in store.events(agent.id)].count("vanished") == 0


def test_a_reported_death_is_acted_on_before_the_list_catches_up(store, tmp_path):
    """Docker's list can still say "running" just after its die event: the event wins."""
    settings = Settings(state_dir=tmp_path, gateway_url="http://127.0.0.1:9")
    runtime = HeldRuntime(settings)
    runtime.release.set()
    loop = reconciler(store, runtime, utc_now)
    agent = spawn_one(store)

    async def scenario() -> list:
        await loop.tick()
        await loop.drain()
        (workload,) = ProcessRuntime.list(runtime)
        os.kill(int(workload.container_id.removeprefix("pid-")), signal.SIGKILL)
        wait_until(lambda: not ProcessRuntime.list(runtime)[0].alive, "the exit", every=0.05)
        runtime.lagging = True  # the list has not caught up with the death yet
        assert await loop.tick() == []  # nothing known: nothing done
        loop._note(RuntimeEvent("die", workload.container_id, agent.id, -9))
        return await loop.tick()

    try:
        (action,) = asyncio.run(scenario())
    finally:
        for workload in ProcessRuntime.list(runtime):
            ProcessRuntime.remove(runtime, workload.container_id)
    assert isinstance(action, Restart) and action.reason == "exited with code -9"
