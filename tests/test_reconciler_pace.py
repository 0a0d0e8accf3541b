"""How the reconciler paces its work, against a real store and the runtime port in memory:
a burst of wakes is answered by a few ticks, a lone wake at once, and accounts are
created beside the containers' starts, not all before them."""

import asyncio
import itertools
import threading
import time

import pytest

from orchestrator.control.accounts import Account
from orchestrator.control.reconciler import BURST_SECONDS, PACE_BURST, Pace
from orchestrator.lifecycle import Phase
from tests.fakes import Clock, FakeRuntime, reconciler


def test_a_burst_of_wakes_is_answered_by_a_few_ticks_at_a_measured_pace(store):
    """A thousand containers starting wake the loop thousands of times: after the first
    few, ticks begin BURST_SECONDS apart, however often it is woken."""
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
    # The loop's first tick and the bucket's PACE_BURST go at once; the next waits for what
    # the bucket lacks, and from there on ticks begin BURST_SECONDS apart.
    assert PACE_BURST + 2 < len(begun) <= PACE_BURST + 2 + 1 / BURST_SECONDS
    paced = begun[PACE_BURST + 1 :]
    assert min(b - a for a, b in itertools.pairwise(paced)) >= BURST_SECONDS - 0.02


def test_the_pace_lets_a_lone_wake_through_at_once_and_spaces_a_burst():
    pace = Pace(every=0.25, burst=3)
    assert pace.wait(100.0) == 0  # the interval's tick
    assert pace.wait(100.05) == 0  # a crash right after it is answered at once
    assert pace.wait(100.06) == 0  # the bucket's last tick
    waits = [pace.wait(100.07) for _ in range(4)]  # then each waits its turn
    assert waits == pytest.approx([0.18, 0.43, 0.68, 0.93])  # 0.28 tokens left, then debt
    assert pace.wait(200.0) == 0  # quiet for long enough: full again
    assert pace.wait(200.0) == pace.wait(200.0) == 0


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
