"""The reconciler's loop against a real store and the process runtime."""

import asyncio
import os
import signal
import threading

from orchestrator.executor import Reconciler
from orchestrator.phases import Phase
from orchestrator.reconciler import Restart
from orchestrator.runtime.process import ProcessRuntime
from orchestrator.settings import Settings
from tests.fleetd import wait_until
from tests.test_supervision import NOW, scale


class HeldRuntime(ProcessRuntime):
    """The process runtime with two hooks: `remove` waits for `release`, and `list` first
    runs `before_list` (to finish other work while a tick is half-way)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.removing = threading.Event()
        self.release = threading.Event()
        self.before_list = lambda: None

    def remove(self, container_id: str) -> None:
        self.removing.set()
        self.release.wait(30)
        super().remove(container_id)

    def list(self):
        self.before_list()
        return super().list()


def test_an_action_finishing_mid_tick_is_not_counted_twice(store, tmp_path):
    """A tick that read the store while a restart was in flight must not act on that
    agent: by the time it lists, the old container is gone and it would look vanished."""
    settings = Settings(state_dir=tmp_path, database_url="unused", gateway_url="http://127.0.0.1:9")
    runtime = HeldRuntime(settings)
    runtime.release.set()
    reconciler = Reconciler(store, runtime, settings, b"k" * 32)
    (agent,), _ = scale(store, 1)
    store.transition(agent.id, "exited", "an earlier crash", NOW, failures=1)

    async def scenario() -> list:
        await reconciler.tick()  # starts it
        await reconciler.drain()
        (workload,) = runtime.list()
        os.kill(int(workload.container_id.removeprefix("pid-")), signal.SIGKILL)
        wait_until(lambda: not runtime.list()[0].alive, "the agent's exit", every=0.05)

        runtime.release.clear()
        first = await reconciler.tick()
        assert [type(a) for a in first] == [Restart]
        await asyncio.to_thread(runtime.removing.wait, 30)

        def finish_the_restart() -> None:  # after the store read, before the list
            runtime.release.set()
            wait_until(lambda: not reconciler._in_flight, "the restart", every=0.01)

        runtime.before_list = finish_the_restart
        second = await reconciler.tick()
        await reconciler.drain()
        return second

    try:
        assert asyncio.run(scenario()) == []
    finally:
        for workload in ProcessRuntime.list(runtime):
            ProcessRuntime.remove(runtime, workload.container_id)
    after = store.get(agent.id)
    assert (after.failures, after.restarts, after.phase) == (2, 1, Phase.BACKOFF)
    assert [e.kind for e in store.events(agent.id)].count("vanished") == 0
