"""How the reconciler paces its work, against a real store and the runtime port in memory:
a burst of wakes is answered by a few ticks, and accounts are created beside the
containers' starts, not all before them."""

import asyncio
import itertools
import threading
import time

from orchestrator.control.accounts import Account
from orchestrator.control.reconciler import BURST_SECONDS
from orchestrator.lifecycle import Phase
from tests.fakes import Clock, FakeRuntime, reconciler


def test_a_burst_of_wakes_is_answered_by_a_few_ticks_at_a_measured_pace(store):
    """A thousand containers starting wake the loop thousands of times: ticks begin
    BURST_SECONDS apart at the least, however often it is woken."""
    loop = reconciler(store, FakeRuntime(events=True), Clock().now)
    begun: list[float] = []
    tick = loop.tick

    async def counted_tick():
        begun.append(time.monotonic())
        return await tick()

    loop.tick = counted_tick

    async def burst() -> None:
        running = asyncio.create_task(loop.run())
        for _ in range(100):  # a wake every 10 ms for a second
            loop.wake()
            await asyncio.sleep(0.01)
        running.cancel()

    asyncio.run(burst())
    assert 2 <= len(begun) < 100 / 4
    assert min(b - a for a, b in itertools.pairwise(begun)) >= BURST_SECONDS - 0.02


class HeldAccounts:
    """The platform's account creation, held until `release` is set."""

    base_url = "http://platform.invalid"

    def __init__(self) -> None:
        self.release = threading.Event()

    def create(self, agent_id: str, name: str, strategy: str) -> Account:
        self.release.wait(60)
        return Account(f"user-{agent_id}", name, "sealed")


def test_accounts_being_created_do_not_hold_up_the_starts_of_agents_that_have_theirs(store):
    clock, runtime, accounts = Clock(), FakeRuntime(), HeldAccounts()
    loop = reconciler(store, runtime, clock.now, platform=accounts)  # 4 actions at once
    waiting, _ = store.spawn(
        "key-held", [{"name": f"w{i}", "strategy": "momentum"} for i in range(8)], str, clock.now()
    )
    ready, _ = store.spawn(
        "key-ready", [{"name": f"r{i}", "strategy": "momentum"} for i in range(2)], str, clock.now()
    )
    for agent in ready:  # their accounts were created before
        store.transition(
            agent.id, "provisioned", "", clock.now(), phase=Phase.STARTING, platform_user_id="u"
        )

    async def spawn() -> set[str]:
        try:
            for _ in range(2):  # the first creates accounts, the second sees them under way
                await loop.tick()
            started: set[str] = set()
            for _ in range(500):  # up to 5 s for the starts, while the accounts are held
                started = {o.agent_id for o in runtime.list()}
                if len(started) == len(ready):
                    break
                await asyncio.sleep(0.01)
            return started
        finally:
            accounts.release.set()
            await loop.drain()

    started = asyncio.run(spawn())
    assert started == {a.id for a in ready}, "the starts waited for the accounts"
    assert all(store.get(a.id).platform_user_id == f"user-{a.id}" for a in waiting)
