"""The whole lifecycle policy, carried out by the real reconciler and executor on a real
store, against the in-memory runtime and a clock that moves only when told: milliseconds
per test, no sleeping."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from orchestrator.control.rollout import RolloutPolicy
from orchestrator.lifecycle import AlertKind, EventKind, Phase
from orchestrator.runtime import AgentLaunch
from orchestrator.state.rollouts import RolloutBook
from orchestrator.state.store import spawn_ids
from orchestrator.state.tables import utc
from tests.fakes import Clock, FakeRuntime, Ticker, reconciler


@pytest.fixture(params=["listed", "events"])
def world(store, request):
    """A store, the fake runtime, the fake clock and a ticker over them; the runtime either
    only listed, so that every tick plans for every agent, or also reporting its changes
    by events, so that the ticks between two full ones plan only for some."""
    clock, runtime = Clock(), FakeRuntime(events=request.param == "events")
    ticker = Ticker(reconciler(store, runtime, clock.now, threshold=3))
    yield store, runtime, clock, ticker
    ticker.close()


def spawn(store, clock, count=1, key="spawn-key-1"):
    personalities = [{"name": f"p{i}", "strategy": "contrarian"} for i in range(count)]
    agents, _ = store.spawn(key, personalities, lambda agent_id: f"h-{agent_id}", clock.now())
    return agents


def until_restart(store, clock, agent) -> float:
    """Seconds until the agent's restart is due."""
    return (utc(store.get(agent.id).next_restart_at) - clock.now()).total_seconds()


def heartbeat(store, clock, agent):
    store.heartbeat(agent.id, 1, None, clock.now())


def kinds(store, agent):
    return [e.kind for e in store.events(agent.id)]


def test_a_new_agent_is_started_once_and_adopted_by_a_restarted_daemon(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    ticker.tick()  # nothing more to do
    assert runtime.created == 1
    heartbeat(store, clock, agent)
    assert store.get(agent.id).phase == Phase.RUNNING

    again = Ticker(reconciler(store, runtime, clock.now))  # the daemon restarted
    try:
        assert again.tick() == []
    finally:
        again.close()
    assert runtime.created == 1 and store.get(agent.id).restarts == 0


def test_crashes_back_off_enter_one_crash_loop_and_recover_with_one_alert_each(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    heartbeat(store, clock, agent)

    waits = []
    for _ in range(4):
        runtime.crash(agent.id, exit_code=3)
        ticker.tick()  # records the failure, restarts now or sets the back-off
        row = store.get(agent.id)
        wait = 0 if row.container_id else until_restart(store, clock, agent)
        waits.append((row.failures, row.phase, wait))
        if row.container_id is None:
            assert ticker.tick() == []  # the back-off holds
            clock.advance(wait)
            ticker.tick()  # and then it starts
        heartbeat(store, clock, agent)
    assert waits == [
        (1, Phase.STARTING, 0),
        (2, Phase.BACKOFF, 1),
        (3, Phase.CRASHLOOP, 2),
        (4, Phase.CRASHLOOP, 4),
    ]
    assert [a.kind for a in store.alerts()] == [AlertKind.CRASHLOOP]
    assert kinds(store, agent).count(EventKind.EXITED) == 4

    for _ in range(59):  # heartbeating for 590 s: not healthy long enough yet
        clock.advance(10)
        heartbeat(store, clock, agent)
        ticker.tick()
    assert store.get(agent.id).phase == Phase.CRASHLOOP
    clock.advance(10)
    ticker.tick()
    row = store.get(agent.id)
    assert (row.phase, row.failures, row.restarts) == (Phase.RUNNING, 0, 4)
    assert [a.kind for a in store.alerts()] == [AlertKind.RECOVERED, AlertKind.CRASHLOOP]


def test_a_start_the_daemon_died_before_recording_is_adopted_and_runs(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    for _ in range(2):  # the second failure in a row backs off
        runtime.crash(agent.id)
        ticker.tick()
    assert store.get(agent.id).phase == Phase.BACKOFF
    clock.advance(until_restart(store, clock, agent))
    # the back-off's start reached the runtime, and the daemon died before recording it
    runtime.create(AgentLaunch(agent.id, agent.name, "http://gateway", "token", "spec-of-image-1"))
    created = runtime.created

    again = Ticker(reconciler(store, runtime, clock.now))
    try:
        again.tick()
    finally:
        again.close()
    row = store.get(agent.id)
    assert (row.phase, row.container_id, row.next_restart_at) == (
        Phase.STARTING,
        runtime.running(agent.id).container_id,
        None,
    )
    heartbeat(store, clock, agent)
    assert store.get(agent.id).phase == Phase.RUNNING
    assert runtime.created == created  # adopted, not started a second time


def test_a_beat_of_the_failed_workload_written_after_the_failure_does_not_make_it_running(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    heartbeat(store, clock, agent)
    before_the_crash = clock.now()  # a beat received now waits for its batch
    clock.advance(0.5)
    runtime.crash(agent.id)
    runtime.refuse_starts("the engine is busy")  # the agent stays without a workload
    ticker.tick()
    assert store.get(agent.id).phase == Phase.BACKOFF
    runtime.refuse_starts(None)
    clock.advance(until_restart(store, clock, agent))
    ticker.tick()  # a new workload, starting
    assert store.get(agent.id).phase == Phase.STARTING
    store.heartbeat(agent.id, 2, None, before_the_crash)  # the batch reaches the store
    assert store.get(agent.id).phase == Phase.STARTING
    clock.advance(0.5)
    store.heartbeat(agent.id, 3, None, clock.now())  # its successor's first beat
    assert store.get(agent.id).phase == Phase.RUNNING


def test_a_beat_before_the_start_is_recorded_leaves_the_agent_starting(world):
    store, _, clock, _ = world
    (agent,) = spawn(store, clock)  # its workload is not started, or not yet recorded
    store.transition(agent.id, EventKind.PROVISIONING, "ready", clock.now(), phase=Phase.STARTING)
    heartbeat(store, clock, agent)
    assert store.get(agent.id).phase == Phase.STARTING


def test_an_out_of_memory_kill_is_recorded_as_such(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    runtime.crash(agent.id, exit_code=137, oom=True)
    ticker.tick()
    (event,) = [e for e in store.events(agent.id) if e.kind == EventKind.OOM_KILLED]
    assert "exceeding its memory limit" in event.message


def test_a_start_that_fails_backs_off_keeps_its_reason_and_reaches_the_crash_loop(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    runtime.refuse_starts("image agent-fleet-agent:latest not found")
    phases = []
    for _ in range(3):
        ticker.tick()
        row = store.get(agent.id)
        phases.append((row.phase, row.failures))
        assert row.reason == "start failed: image agent-fleet-agent:latest not found"
        wait = until_restart(store, clock, agent)
        if wait:
            assert ticker.tick() == []  # it waits out its back-off
            clock.advance(wait)
    assert phases == [(Phase.STARTING, 1), (Phase.BACKOFF, 2), (Phase.CRASHLOOP, 3)]
    assert kinds(store, agent).count(EventKind.START_FAILED) == 3
    messages = [e.message for e in store.events(agent.id) if e.kind == EventKind.START_FAILED]
    assert messages[1].endswith("not found; next try (failure 2 in a row) in 1s"), messages
    assert [a.kind for a in store.alerts()] == [AlertKind.CRASHLOOP]

    runtime.refuse_starts(None)
    ticker.tick()
    assert runtime.created == 1
    started = store.get(agent.id)
    assert started.phase == Phase.CRASHLOOP  # until it stays healthy
    assert started.reason is None  # the start failures are history: the timeline keeps them


def test_a_hung_agent_is_restarted_once_past_the_heartbeat_timeout(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    heartbeat(store, clock, agent)
    clock.advance(30)
    assert ticker.tick() == []
    clock.advance(1)
    ticker.tick()
    (event,) = [e for e in store.events(agent.id) if e.kind == EventKind.UNHEALTHY]
    assert event.message.startswith("no heartbeat for 31s; restart 1")
    assert runtime.created == 2 and store.get(agent.id).restarts == 1


def test_a_vanished_workload_is_replaced_and_an_orphan_removed(world):
    store, runtime, clock, ticker = world
    first, second = spawn(store, clock, 2)
    ticker.tick()
    runtime.vanish(first.id)
    store.request_retire(second.id, clock.now())
    store.transition(second.id, EventKind.RETIRED, "gone", clock.now(), phase=Phase.RETIRED)
    ticker.tick()
    assert EventKind.VANISHED in kinds(store, first)
    assert [w.agent_id for w in runtime.list()] == [first.id]  # the orphan went


def test_nothing_is_touched_while_the_runtime_cannot_list(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    runtime.listing_fails = True
    store.transition(agent.id, EventKind.CREATED, "forget", clock.now(), container_id="c-gone")
    assert ticker.tick() == []
    assert ticker.loop.listed_once  # it had listed before; this round it could not


def test_retiring_stops_and_removes_the_workload_and_revokes_the_token(world):
    store, runtime, clock, ticker = world
    (agent,) = spawn(store, clock)
    ticker.tick()
    store.request_retire(agent.id, clock.now())
    ticker.tick()
    row = store.get(agent.id)
    assert (row.phase, row.token_hash, row.token_generation) == (Phase.RETIRED, None, 1)
    assert runtime.list() == []
    assert ticker.tick() == []  # retiring again changes nothing


def test_spawn_ids_are_stable():
    assert spawn_ids("k", 2) == spawn_ids("k", 2) != spawn_ids("j", 2)


def test_a_crash_is_restarted_in_place_where_it_can_be_and_a_back_off_removes_it(store):
    clock, runtime = Clock(), FakeRuntime(restarts_in_place=True)
    ticker = Ticker(reconciler(store, runtime, clock.now, threshold=3))
    try:
        agent, other = spawn(store, clock, 2)
        ticker.tick()
        heartbeat(store, clock, agent)
        first = runtime.crash(agent.id, exit_code=3)
        ticker.tick()  # the first failure: started again at once, as it was
        row = store.get(agent.id)
        assert (row.container_id, row.restarts, row.phase) == (first, 1, Phase.STARTING)
        assert runtime.running(agent.id).container_id == first and runtime.created == 2
        assert store.events(agent.id)[-1].message == f"fake workload {first} started again"

        runtime.crash(agent.id, exit_code=3)
        ticker.tick()  # the second in a row backs off: nothing is left to start
        assert store.get(agent.id).container_id is None
        assert [w.agent_id for w in runtime.list()] == [other.id]
        clock.advance(until_restart(store, clock, agent))
        ticker.tick()
        assert runtime.running(agent.id).container_id != first and runtime.created == 3

        runtime.crash(other.id, exit_code=3)
        runtime.refuse_starts("the engine refuses")
        ticker.tick()  # it cannot be started again: it is removed, and the start fails
        assert [w.agent_id for w in runtime.list()] == [agent.id]
        assert kinds(store, other)[-1] == EventKind.START_FAILED
    finally:
        ticker.close()


@pytest.fixture
def swarm_world(store):
    """As `world`, with a runtime that restarts failed workloads itself (as Swarm does)."""
    clock, runtime = Clock(), FakeRuntime(restarts_itself=True)
    ticker = Ticker(reconciler(store, runtime, clock.now, threshold=3))
    yield store, runtime, clock, ticker
    ticker.close()


def test_a_runtime_that_restarts_itself_is_counted_never_restarted(swarm_world):
    store, runtime, clock, ticker = swarm_world
    (agent,) = spawn(store, clock)
    ticker.tick()
    heartbeat(store, clock, agent)
    (workload,) = runtime.list()

    for n in range(1, 4):
        clock.advance(5)
        runtime.fail_task(agent.id, clock.now(), exit_code=2)
        ticker.tick()
        assert ticker.tick() == []  # each failure counted once
        heartbeat(store, clock, agent)
        assert store.get(agent.id).failures == n
    clock.advance(5)
    runtime.fail_task(agent.id, clock.now())
    runtime.fail_task(agent.id, clock.now() + timedelta(seconds=1))  # two between ticks
    ticker.tick()
    row = store.get(agent.id)
    assert (row.failures, row.restarts, row.phase) == (5, 5, Phase.CRASHLOOP)
    assert row.container_id == workload.container_id and runtime.created == 1  # never ours
    assert [a.kind for a in store.alerts()] == [AlertKind.CRASHLOOP]
    messages = [e.message for e in store.events(agent.id) if e.kind == EventKind.EXITED]
    assert "exited with code 2; fake restarts it; restart 1 (failure 1 in a row) now" in messages
    assert any(m.startswith("2 tasks failed, the last exited with code 1") for m in messages)

    clock.advance(120)  # silent well past the heartbeat timeout: the runtime's health
    assert ticker.tick() == []  # check handles hangs, not us
    heartbeat(store, clock, agent)
    clock.advance(601)
    heartbeat(store, clock, agent)
    ticker.tick()
    assert store.get(agent.id).phase == Phase.RUNNING
    assert [a.kind for a in store.alerts()] == [AlertKind.RECOVERED, AlertKind.CRASHLOOP]

    again = Ticker(reconciler(store, runtime, clock.now))  # a restarted daemon
    try:
        assert again.tick() == []  # old failures stay counted
    finally:
        again.close()


def test_the_node_a_workload_runs_on_is_recorded_when_it_moves(swarm_world):
    store, runtime, clock, ticker = swarm_world
    (agent,) = spawn(store, clock)
    ticker.tick()
    runtime.move(agent.id, "node2")
    ticker.tick()
    runtime.move(agent.id, "node1")
    ticker.tick()
    assert ticker.tick() == []
    assert store.get(agent.id).node == "node1"
    placed = [e.message for e in store.events(agent.id) if e.kind == EventKind.PLACED]
    assert placed == ["runs on node node2", "runs on node node1"]


def test_a_workload_no_node_takes_says_why_until_it_is_placed(swarm_world):
    store, runtime, clock, ticker = swarm_world
    (agent,) = spawn(store, clock)
    ticker.tick()
    why = "no suitable node (scheduling constraints not satisfied on 2 nodes)"
    runtime.unplace(agent.id, why)
    ticker.tick()
    assert ticker.tick() == []  # said once
    row = store.get(agent.id)
    assert (row.phase, row.reason) == (Phase.STARTING, f"not placed: {why}")
    runtime.move(agent.id, "node1")
    ticker.tick()
    row = store.get(agent.id)
    assert (row.reason, row.node, row.restarts) == (None, "node1", 0)
    assert kinds(store, agent)[-2:] == [EventKind.UNPLACED, EventKind.PLACED]


ROLLOUT = RolloutPolicy(
    batch_fraction=0.25, settle=timedelta(seconds=5), deadline=timedelta(seconds=60)
)


def images(runtime, agents):
    """Which image each agent's workload runs, in agent order."""
    return [runtime.images[runtime.running(a.id).container_id] for a in agents]


def test_a_new_image_rolls_out_a_batch_at_a_time_and_a_broken_one_rolls_back(store):
    clock, runtime = Clock(), FakeRuntime()
    ticker = Ticker(reconciler(store, runtime, clock.now, rollouts=ROLLOUT))
    book = RolloutBook(store)
    agents = sorted(spawn(store, clock, count=4), key=lambda a: a.id)
    ticker.tick()

    def beat_and_tick(broken=None):
        clock.advance(6)
        for agent in agents:
            workloads = [w for w in runtime.list() if w.agent_id == agent.id and w.alive]
            if workloads and runtime.images[workloads[0].container_id] != broken:
                heartbeat(store, clock, agent)  # a broken one never beats
        ticker.tick()

    beat_and_tick()
    assert images(runtime, agents) == ["image-1"] * 4 and book.latest().state == "done"

    runtime.tagged = "image-2"  # a rebuilt image, seen without a restart
    seen = []
    for _ in range(12):
        beat_and_tick()
        seen.append(images(runtime, agents).count("image-2"))
    # seen, then the canary, then one batch at a time
    assert seen == sorted(seen) and set(seen) == {0, 1, 2, 3, 4}
    assert book.latest().state == "done"
    assert [a.kind for a in store.alerts()] == [AlertKind.ROLLOUT_DONE]

    runtime.tagged = "image-3"  # broken: its workloads die at once
    steady = {a.id: runtime.running(a.id).container_id for a in agents[1:]}
    for _ in range(6):
        beat_and_tick(broken="image-3")
        canary = [w for w in runtime.list() if w.agent_id == agents[0].id and w.alive]
        if canary and runtime.images[canary[0].container_id] == "image-3":
            runtime.crash(agents[0].id)
    rollout = book.latest()
    assert rollout.state == "rolled_back" and "on the new image is backoff" in rollout.reason
    beat_and_tick()  # its back-off over, the canary starts on the old image
    assert images(runtime, agents) == ["image-2"] * 4  # the canary is back
    assert {a.id: runtime.running(a.id).container_id for a in agents[1:]} == steady
    assert AlertKind.ROLLOUT_FAILED in [a.kind for a in store.alerts()]
    ticker.tick()
    assert book.latest().id == rollout.id  # the rejected image is not tried again
    ticker.close()


def test_actions_stuck_on_the_engine_leave_the_loops_own_threads_free(store):
    """Actions have threads of their own: four creates hanging on the engine do not hold
    up what the daemon runs in the loop's default pool (the store's reads, the heartbeats'
    writes), even when that pool is smaller than the actions' bound."""
    clock, runtime = Clock(), FakeRuntime()
    loop = reconciler(store, runtime, clock.now)  # up to 4 actions at once
    spawn(store, clock, count=4)
    engine, create = threading.Event(), runtime.create

    def hanging_create(launch):
        engine.wait(30)
        return create(launch)

    runtime.create = hanging_create

    async def scenario() -> int:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))
        assert len(await loop.tick()) == 4  # four starts, every one hanging
        try:
            return await asyncio.wait_for(asyncio.to_thread(lambda: 42), timeout=10)
        finally:
            engine.set()
            await loop.drain()

    assert asyncio.run(scenario()) == 42
    assert runtime.created == 4
