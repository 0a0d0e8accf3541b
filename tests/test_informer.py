"""The reconciler's memory between full reads: `next_look` held against the plan it stands
for (hypothesis hunts for a moment the plan changes its mind before the look), the
memory's due agents, the store's change feed, and what a reconciler reads between full
reads of a real store."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.control.informer import AgentMemory, next_look
from orchestrator.control.plan import Desired, DesiredAgent, Policy, action_key, plan
from orchestrator.lifecycle import FINAL, Phase
from orchestrator.runtime import ObservedAgent
from orchestrator.state.changes import AgentChanges
from orchestrator.state.store import Store
from tests.fakes import Clock, FakeRuntime, Ticker, reconciler

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = Policy(
    heartbeat_timeout=timedelta(seconds=30),
    restart_reset=timedelta(minutes=10),
    crashloop_threshold=3,
)
SPEC = "spec-1"

moments = st.one_of(
    st.none(),
    st.integers(-900, 900).map(lambda s: NOW + timedelta(seconds=s)),
    # near the edges of each rule: now, a heartbeat timeout ago, a restart reset ago
    st.tuples(st.sampled_from([0, -30, -600]), st.integers(-5, 5)).map(
        lambda edge: NOW + timedelta(seconds=sum(edge))
    ),
)


@st.composite
def situations(draw):
    # most often an agent with a running workload, where most rules apply
    phase = draw(st.sampled_from([*sorted(set(Phase) - FINAL), *[Phase.RUNNING] * 4]))
    container = draw(st.sampled_from([None, "c-1", "c-1"]))
    agent = DesiredAgent(
        "a",
        "agent-a",
        phase,
        container,
        has_account=draw(st.booleans()),
        provision_attempts=draw(st.integers(0, 5)),
        next_provision_at=draw(moments),
        failures=draw(st.integers(0, 4)),
        next_restart_at=draw(moments),
        alive_at=draw(moments),
        heartbeat_at=draw(moments),
        healthy_since=draw(moments),
    )
    state = draw(st.sampled_from(["running", "running", "running", "exited", "created", None]))
    observed = [] if state is None else [ObservedAgent("c-1", "a", "fleet-a", state, None, SPEC)]
    desired = Desired([agent], SPEC, POLICY, platform=draw(st.booleans()))
    return desired, observed


def decided(desired, observed, now):
    return sorted((type(a).__name__, action_key(a)) for a in plan(desired, observed, now))


def edges(agent: DesiredAgent) -> list[datetime]:
    """Every instant at which any rule of the plan could turn for this agent: each of its
    moments, a heartbeat timeout and a restart reset after each, a microsecond either side."""
    fields = [agent.next_provision_at, agent.next_restart_at, agent.alive_at, agent.healthy_since]
    after = [timedelta(0), POLICY.heartbeat_timeout, POLICY.restart_reset]
    tick = timedelta(microseconds=1)
    return [m + d + e for m in fields if m for d in after for e in (-tick, timedelta(0), tick)]


@settings(max_examples=1000, deadline=None)
@given(situations())
def test_the_plan_changes_its_mind_about_an_agent_only_at_its_next_look(situation):
    desired, observed = situation
    (agent,) = desired.agents
    look = next_look(agent, POLICY, NOW)
    assert look is None or look > NOW
    # the plan decides as it does now at every instant it could turn before the look
    now = decided(desired, observed, NOW)
    for instant in edges(agent):
        if instant > NOW and (look is None or instant < look):
            assert decided(desired, observed, instant) == now, instant


def test_a_silent_agent_is_looked_at_the_first_instant_it_is_silent_for_too_long():
    agent = DesiredAgent("a", "agent-a", Phase.RUNNING, "c-1", alive_at=NOW)
    look = next_look(agent, POLICY, NOW)
    observed = [ObservedAgent("c-1", "a", "fleet-a", "running", None, SPEC)]
    desired = Desired([agent], SPEC, POLICY)
    assert decided(desired, observed, look - timedelta(microseconds=1)) == []
    assert decided(desired, observed, look) == [("Restart", "agent:a")]


def test_the_memory_gives_each_agent_once_when_its_moment_comes_and_forgets_moved_moments():
    memory = AgentMemory(POLICY)
    quiet = DesiredAgent("q", "agent-q", Phase.RUNNING, "c-q", alive_at=NOW)
    backoff = DesiredAgent(
        "b", "agent-b", Phase.BACKOFF, None, next_restart_at=NOW + timedelta(seconds=5)
    )
    memory.reset([quiet, backoff])
    memory.planned([quiet, backoff], NOW)
    assert memory.due(NOW + timedelta(seconds=4)) == set()
    assert memory.due(NOW + timedelta(seconds=5)) == {"b"}
    assert memory.due(NOW + timedelta(seconds=6)) == set()  # once
    # a heartbeat read again moves q's moment on: the old one is not due any more
    heard = DesiredAgent("q", "agent-q", Phase.RUNNING, "c-q", alive_at=NOW + timedelta(seconds=20))
    memory.update([heard], {"q"})
    memory.planned([heard], NOW + timedelta(seconds=20))
    assert memory.due(NOW + timedelta(seconds=31)) == set()
    assert memory.due(NOW + timedelta(seconds=51)) == {"q"}


def test_a_heartbeat_written_moves_a_look_for_silence_on_and_no_other():
    memory = AgentMemory(POLICY)
    quiet = DesiredAgent("q", "agent-q", Phase.RUNNING, "c-q", alive_at=NOW)
    other = replace(quiet, agent_id="b", next_restart_at=NOW + timedelta(seconds=40))
    memory.reset([quiet, other])
    memory.planned([quiet, other], NOW)  # both due for silence at +30, b again at +40
    memory.beaten({"q": NOW + timedelta(seconds=20), "b": NOW + timedelta(seconds=20)})
    assert (
        memory.agent("q").alive_at == memory.agent("q").heartbeat_at == NOW + timedelta(seconds=20)
    )
    assert memory.due(NOW + timedelta(seconds=31)) == set()  # neither is silent yet
    assert memory.due(NOW + timedelta(seconds=40)) == {"b"}  # its own moment, beat or not
    assert memory.due(NOW + timedelta(seconds=50)) == set()
    assert memory.due(NOW + timedelta(seconds=51)) == {"q"}  # silent since its beat at +20


def test_a_beat_older_than_the_row_changes_nothing_and_a_read_forgets_the_beats():
    memory = AgentMemory(POLICY)
    heard = DesiredAgent("q", "agent-q", Phase.RUNNING, "c-q", alive_at=NOW)
    memory.reset([heard])
    memory.planned([heard], NOW)
    memory.beaten({"q": NOW - timedelta(seconds=5)})
    assert memory.agent("q") is heard
    assert memory.due(NOW + timedelta(seconds=31)) == {"q"}
    memory.beaten({"q": NOW + timedelta(seconds=20)})
    memory.update([heard], {"q"})  # the row read again holds every beat told before
    assert memory.agent("q") is heard


def test_an_agent_read_again_and_not_found_is_over_and_forgotten():
    memory = AgentMemory(POLICY)
    gone = DesiredAgent("g", "agent-g", Phase.RUNNING, "c-g", alive_at=NOW)
    memory.reset([gone])
    memory.planned([gone], NOW)
    memory.update([], {"g"})
    assert memory.agents == {}
    assert memory.due(NOW + timedelta(hours=1)) == set()


def test_the_change_feed_gives_each_change_once_counts_identity_changes_and_keeps_beats_apart():
    changes = AgentChanges()
    changes.changed(["a", "b"])
    changes.changed(["a"], identity=True)
    assert changes.take() == {"a", "b"}
    assert changes.take() == set()
    assert (changes.epoch, changes.agent_epoch("a"), changes.agent_epoch("b")) == (1, 1, 0)
    later = NOW + timedelta(seconds=1)
    changes.beats_written([("a", later), ("b", NOW)], [])
    changes.beats_written([("a", NOW)], [])  # a batch of older beats, written after
    assert changes.take_beats() == {"a": later, "b": NOW}  # the latest of each
    assert changes.take_beats() == {} and changes.take() == set()  # beats are not changes


class Reads:
    """Counts the rows each tick reads through `Store.columns`."""

    def __init__(self, store):
        self.rows: list[int] = []
        self.full: list[bool] = []
        self._columns = store.columns
        store.columns = self

    def __call__(self, names, phases, ids=None):
        rows = self._columns(names, phases, ids)
        self.rows.append(len(rows))
        self.full.append(ids is None)
        return rows

    def take(self) -> list[tuple[bool, int]]:
        taken = list(zip(self.full, self.rows, strict=True))
        self.full, self.rows = [], []
        return taken


@pytest.fixture
def fleet(store):
    """Ten running agents under a reconciler whose runtime reports its changes by events."""
    clock, runtime = Clock(), FakeRuntime(events=True)
    ticker = Ticker(reconciler(store, runtime, clock.now))
    personalities = [{"name": f"p{i}", "strategy": "contrarian"} for i in range(10)]
    agents, _ = store.spawn("key", personalities, lambda agent_id: f"h-{agent_id}", clock.now())
    ticker.tick()
    for agent in agents:
        store.heartbeat(agent.id, 1, None, clock.now())
    ticker.tick()
    yield store, runtime, clock, ticker, agents, Reads(store)
    ticker.close()


def test_between_full_reads_a_tick_reads_only_the_agents_changed_reported_on_or_due(fleet):
    store, runtime, clock, ticker, agents, reads = fleet
    assert ticker.tick() == [] and reads.take() == []  # nothing changed: nothing read
    assert ticker.loop.planned == 0 and not ticker.loop.planned_all

    runtime.crash(agents[0].id)  # the engine reports it
    (restart,) = ticker.tick()
    assert restart.agent_id == agents[0].id and reads.take() == []
    store.request_retire(agents[1].id, clock.now())  # the store reports it
    (retire,) = ticker.tick()
    # that one, and the one whose restart was written
    assert retire.agent_id == agents[1].id and reads.take() == [(False, 2)]

    # the others beat on; the one restarted does not: only it is restarted for silence
    clock.advance(20)
    for agent in agents[2:]:
        store.heartbeat(agent.id, 2, None, clock.now())
    clock.advance(11)
    (silent,) = [a for a in ticker.tick() if type(a).__name__ == "Restart"]
    assert silent.agent_id == agents[0].id
    # the store told of the others' beats: only the silent one is read again
    assert reads.take() == [(False, 1)] and ticker.loop.planned == 1


def test_a_change_made_outside_this_store_is_seen_at_the_next_full_read(store):
    clock, runtime = Clock(), FakeRuntime(events=True)
    elsewhere = Store(store.engine)  # another process's store: its changes are not fed here
    ticker = Ticker(reconciler(store, runtime, clock.now))
    try:
        (agent,), _ = store.spawn("key", [{"strategy": "contrarian"}], str, clock.now())
        ticker.tick()
        assert ticker.loop.planned_all  # the first tick plans for every agent
        ticker.tick()  # the start, as written, read again
        elsewhere.request_retire(agent.id, clock.now())
        assert ticker.tick() == [] and not ticker.loop.planned_all
        runtime.relisted()  # the engine's periodic full list: the store is read in full too
        (retire,) = ticker.tick()
        assert retire.agent_id == agent.id and ticker.loop.planned_all
    finally:
        ticker.close()


def test_an_orphan_whose_removal_failed_is_removed_at_the_next_tick(fleet, caplog):
    _store, runtime, _clock, ticker, agents, _reads = fleet
    stray = runtime.duplicate(agents[0].id)  # the engine reports it
    runtime.removals_refused = True
    (first,) = ticker.tick()
    assert first.container_id == stray and stray in runtime.workloads
    said = f"RemoveOrphan of agent {first.name} failed: the engine cannot remove it now"
    assert said in caplog.text  # the log line names whose workload it was
    runtime.removals_refused = False
    (again,) = ticker.tick()  # its failed action ended: the tick after plans it again
    assert again.container_id == stray and stray not in runtime.workloads
