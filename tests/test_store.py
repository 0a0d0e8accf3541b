"""The store on SQLite and on a real PostgreSQL server: same tests, same behaviour."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from orchestrator.lifecycle import Phase
from orchestrator.state.db import migrate
from orchestrator.state.equity import EquityBook
from orchestrator.state.errors import Ambiguous, Conflict, NotFound
from orchestrator.state.store import spawn_ids
from orchestrator.state.tables import EquitySample

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def hash_for(agent_id):
    return f"hash-{agent_id}"


def people(n, strategy):
    return [{"name": f"trader{i}", "strategy": strategy} for i in range(n)]


def phases(store):
    return {a.name: a.phase for a in store.agents()}


def test_migrations_create_the_tables_and_are_idempotent(store):
    migrate(store.engine)  # a second start applies nothing and breaks nothing
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"agents", "agent_events", "alembic_version"} <= tables


def test_spawn_creates_pending_agents_with_a_timeline(store):
    agents, created = store.spawn("key-0001", people(3, "contrarian"), hash_for, T0)
    assert created
    assert [a.id for a in agents] == spawn_ids("key-0001", 3)
    assert all(a.phase == Phase.PENDING and a.strategy == "contrarian" for a in store.agents())
    assert [e.kind for e in store.events(agents[0].id)] == ["created"]


def test_same_spawn_key_replays_instead_of_duplicating(store):
    first, _ = store.spawn("key-0001", people(2, "contrarian"), hash_for, T0)
    again, created = store.spawn("key-0001", people(2, "contrarian"), hash_for, T0 + timedelta(1))
    assert not created
    assert [a.id for a in again] == [a.id for a in first]
    assert len(store.agents()) == 2


def test_same_spawn_key_with_another_request_is_a_conflict(store):
    store.spawn("key-0001", people(2, "contrarian"), hash_for, T0)
    with pytest.raises(Conflict):
        store.spawn("key-0001", people(3, "contrarian"), hash_for, T0)
    with pytest.raises(Conflict):
        store.spawn("key-0001", people(2, "event_driven"), hash_for, T0)
    assert len(store.agents()) == 2


def test_resolve_by_id_name_and_unique_prefix(store):
    (agent,), _ = store.spawn("key-0001", people(1, "contrarian"), hash_for, T0)
    assert store.resolve(agent.id).id == agent.id
    assert store.resolve(agent.name).id == agent.id
    assert store.resolve(agent.id[:6]).id == agent.id
    with pytest.raises(NotFound):
        store.resolve("ffffffff-0000")
    with pytest.raises(NotFound):
        store.resolve("zz")


def test_ambiguous_prefix_is_refused(store):
    agents, _ = store.spawn("key-0002", people(17, "contrarian"), hash_for, T0)
    first_chars = [a.id[0] for a in agents]  # 17 ids, 16 hex digits: one is shared
    shared = next(c for c in first_chars if first_chars.count(c) > 1)
    with pytest.raises(Ambiguous):
        store.resolve(shared)


def test_first_heartbeat_moves_starting_to_running(store):
    (agent,), _ = store.spawn("key-0001", people(1, "contrarian"), hash_for, T0)
    store.transition(
        agent.id, "container_started", "c1", T0, phase=Phase.STARTING, container_id="c1"
    )
    beat = store.heartbeat(agent.id, 7, None, T0 + timedelta(seconds=3))
    assert beat.phase == Phase.RUNNING
    assert beat.last_cycle == 7
    assert beat.last_heartbeat_at is not None
    assert [e.kind for e in store.events(agent.id)] == ["created", "container_started", "running"]


def test_heartbeats_keep_the_starting_equity_and_sample_equity_sparingly(store):
    (agent,), _ = store.spawn("key-0001", people(1, "contrarian"), hash_for, T0)
    every = timedelta(minutes=5)
    for second, equity in [(0, 100_000.0), (60, 100_500.0), (300, 99_000.0), (420, 99_500.0)]:
        store.heartbeat(
            agent.id, 1, None, T0 + timedelta(seconds=second), every, equity=equity, orders_today=2
        )
    after = store.get(agent.id)
    assert (after.starting_equity, after.equity, after.orders_today) == (100_000.0, 99_500.0, 2)
    history = EquityBook(store).history(agent.id)
    assert history == [
        (T0, 100_000.0),
        (T0 + timedelta(seconds=300), 99_000.0),
    ]
    ((event, name),) = store.recent_events(limit=1)
    assert (event.kind, name) == ("created", after.name)


def test_a_chart_reads_each_agents_last_sample_in_each_slice_of_its_window(store):
    agents, _ = store.spawn("key-0003", people(2, "contrarian"), hash_for, T0)
    with store.session() as s:  # a sample a minute for an hour, each agent its own values
        for minute in range(1, 61):
            for n, agent in enumerate(agents):
                at = T0 + timedelta(minutes=minute)
                s.add(EquitySample(agent_id=agent.id, at=at, equity=1_000.0 * n + minute))
        s.commit()
    thinned = EquityBook(store).samples(T0, T0 + timedelta(hours=1), slices=6)
    last_in_slice = [10, 20, 30, 40, 50, 59, 60]  # 59/6-minute slices from the first, minute 1
    assert thinned == [
        (agent.id, T0 + timedelta(minutes=m), 1_000.0 * n + m)
        for m in last_in_slice
        for n, agent in enumerate(agents)
    ]
    later = EquityBook(store).samples(T0 + timedelta(minutes=30), T0 + timedelta(hours=1), 3)
    # sliced from its first sample (minute 31) on: 29-minute thirds
    assert [(m - T0) // timedelta(minutes=1) for _, m, _ in later][::2] == [40, 50, 59, 60]


def test_a_young_fleets_chart_is_sliced_over_its_minutes_not_the_whole_window(store):
    agents, _ = store.spawn("key-0003", people(2, "contrarian"), hash_for, T0)
    end = T0 + timedelta(days=1)
    moments = [end - timedelta(seconds=300 - 10 * k) for k in range(30)]  # its last 5 minutes
    with store.session() as s:
        for at in moments:
            for agent in agents:
                s.add(EquitySample(agent_id=agent.id, at=at, equity=1_000.0))
        s.commit()
    thinned = EquityBook(store).samples(T0, end, slices=60)  # 5-second slices: all of them
    assert [m for _, m, _ in thinned] == [m for m in moments for _ in agents]
    assert EquityBook(store).samples(end, end + timedelta(days=1), slices=60) == []


def test_pnl_today_counts_from_the_last_equity_before_the_market_day_began(store):
    from orchestrator.operations.views import pnl_today

    (agent,), _ = store.spawn("key-0001", people(1, "contrarian"), hash_for, T0)
    every = timedelta(minutes=5)
    evening = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 20:00 in New York: still March 2
    morning = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 10:00 in New York
    store.heartbeat(agent.id, 1, None, T0, every, equity=100_000.0)
    store.heartbeat(agent.id, 2, None, evening, every, equity=101_000.0)
    # past midnight UTC, the day the fleet's orders are counted on has not ended
    assert pnl_today(store.get(agent.id), "2026-03-02") == 1_000.0
    store.heartbeat(agent.id, 3, None, morning, every, equity=101_500.0)
    after = store.get(agent.id)
    assert pnl_today(after, "2026-03-03") == 500.0
    assert pnl_today(after, "2026-03-04") == 0.0  # nothing reported yet that day
    store.heartbeat(agent.id, 4, None, morning, every, day="2026-03-04", equity=101_600.0)
    assert pnl_today(store.get(agent.id), "2026-03-04") == 100.0  # a sped-up market's day
    assert EquityBook(store).at(evening - timedelta(minutes=1)) == {agent.id: 100_000.0}
    assert EquityBook(store).at(morning) == {agent.id: 101_500.0}


def test_transition_guard_refuses_a_stale_decision(store):
    (agent,), _ = store.spawn("key-0001", people(1, "contrarian"), hash_for, T0)
    store.request_retire(agent.id, T0)
    stale = store.transition(
        agent.id, "container_started", "c1", T0, phase=Phase.STARTING, expect={Phase.PENDING}
    )
    assert stale is None
    assert store.get(agent.id).phase == Phase.RETIRING


def test_retire_is_idempotent_and_keeps_history(store):
    (agent,), _ = store.spawn("key-0001", people(1, "contrarian"), hash_for, T0)
    store.request_retire(agent.id, T0)
    store.request_retire(agent.id, T0)
    store.transition(agent.id, "retired", "done", T0, phase=Phase.RETIRED, token_hash=None)
    again = store.request_retire(agent.id, T0)
    assert again.phase == Phase.RETIRED
    kinds = [e.kind for e in store.events(agent.id)]
    assert kinds == ["created", "retire_requested", "retired"]
    assert store.by_token_hashes([f"hash-{agent.id}"]) == {}


def test_present_is_every_unfinished_agent_and_those_finished_since(store):
    agents, _ = store.spawn("key-0002", people(4, "contrarian"), hash_for, T0)
    staying, early, late, failed = agents
    for agent, hours, phase in ((early, 1, Phase.RETIRED), (late, 3, Phase.RETIRED)):
        store.transition(agent.id, phase.value, "done", T0 + timedelta(hours=hours), phase=phase)
    store.transition(failed.id, "failed", "no", T0 + timedelta(hours=4), phase=Phase.FAILED)
    present = [a.id for a in store.present(T0 + timedelta(hours=2))]
    assert present == sorted(a.id for a in (staying, late, failed))  # one moment: by id
    assert store.phase_counts() == {"pending": 1, "retired": 2, "failed": 1}


def test_token_hash_finds_its_agent_only(store):
    agents, _ = store.spawn("key-0001", people(2, "contrarian"), hash_for, T0)
    digests = [f"hash-unknown-{i}" for i in range(1200)]  # asked in several chunks
    digests[0], digests[1199] = f"hash-{agents[1].id}", f"hash-{agents[0].id}"
    assert {d: a.id for d, a in store.by_token_hashes(digests).items()} == {
        digests[0]: agents[1].id,
        digests[1199]: agents[0].id,
    }


def test_timestamps_come_back_in_utc(store):
    (agent,), _ = store.spawn("key-0001", people(1, "contrarian"), hash_for, T0)
    from orchestrator.state.tables import utc

    assert utc(store.get(agent.id).created_at) == T0
