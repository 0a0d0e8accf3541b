"""Heartbeats answered from memory and written in batches, on SQLite and PostgreSQL: the
gateway's side (`AgentGateway`) against a real store, and the lane that answers a plain
beat before the router (`api.lane`)."""

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from agent_runtime.contract import Bootstrap
from orchestrator import keys
from orchestrator.api.lane import HeartbeatLane
from orchestrator.gateway.agents import TOKEN_MEMORY_SECONDS, AgentGateway, Heartbeat
from orchestrator.lifecycle import Phase
from orchestrator.settings import Settings
from orchestrator.state.errors import Conflict
from orchestrator.state.follows import FollowBook, FollowChange
from orchestrator.state.health import StoreHealth
from orchestrator.state.tables import utc

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def fleet(store, tmp_path):
    """Three starting agents, their tokens, and the gateway over the store."""
    clock = [T0]
    agents, _ = store.spawn(
        "key-beats",
        [{"name": f"t{i}", "strategy": "contrarian"} for i in range(3)],
        lambda agent_id: keys.token_hash(f"token-{agent_id}"),
        T0,
    )
    for agent in agents:
        store.transition(
            agent.id, "container_started", "c", T0, phase=Phase.STARTING, container_id="c"
        )
    health = StoreHealth(lambda: clock[0])
    gateway = AgentGateway(store, None, health, Settings(state_dir=tmp_path), lambda: clock[0])
    return gateway, agents, health, clock


def beat(gateway, agent, cycle, **fields):
    caller = gateway.authenticate(f"token-{agent.id}")
    return gateway.heartbeat(caller, Heartbeat(cycle=cycle, **fields))


def test_beats_are_answered_at_once_and_written_together(fleet, store):
    gateway, agents, _, _ = fleet
    for n, agent in enumerate(agents):
        reply = beat(gateway, agent, 10 + n, equity=1000.0 + n)
        assert (reply.paused, reply.retire) == (False, False)
    assert all(a.last_cycle is None for a in store.agents())  # nothing written yet
    beat(gateway, agents[0], 11, equity=990.0)  # written after its earlier one

    assert gateway.flush() == 4 and gateway.flush() == 0
    written = {a.id: a for a in store.agents()}
    assert [written[a.id].last_cycle for a in agents] == [11, 11, 12]
    assert [written[a.id].equity for a in agents] == [990.0, 1001.0, 1002.0]
    assert {a.phase for a in written.values()} == {Phase.RUNNING}
    assert [e.kind for e in store.events(agents[0].id)][-1] == "running"


def test_a_cycle_that_goes_back_is_refused_until_a_new_process_bootstraps(fleet, store):
    gateway, (agent, *_), _, _ = fleet
    beat(gateway, agent, 20)
    beat(gateway, agent, 20)  # a retry of the same beat
    with pytest.raises(Conflict, match="cycle 19 is behind the last recorded cycle 20"):
        beat(gateway, agent, 19, last_error="rewound")
    gateway.flush()
    assert store.get(agent.id).last_cycle == 20 and store.get(agent.id).last_error is None

    gateway.bootstrap(gateway.authenticate(f"token-{agent.id}"))
    beat(gateway, agent, 3)
    gateway.flush()
    assert store.get(agent.id).last_cycle == 3


def test_a_bootstrap_says_when_the_agent_last_followed_someone(fleet, store):
    """So a process started that market day does not review its follows again."""
    gateway, (agent, other, _), _, _ = fleet
    follows = FollowBook(store)
    follows.record([FollowChange(agent.id, "followed", ("u-1",), T0)])
    later = T0 + timedelta(hours=5)
    follows.record([FollowChange(agent.id, "listed", ("u-1", "u-2"), later)])
    follows.record([FollowChange(agent.id, "unfollowed", ("u-2",), later + timedelta(hours=1))])
    assert gateway.bootstrap(gateway.authenticate(f"token-{agent.id}")).followed_at == T0
    follows.record([FollowChange(agent.id, "followed", ("u-3",), later)])
    assert gateway.bootstrap(gateway.authenticate(f"token-{agent.id}")).followed_at == later
    assert gateway.bootstrap(gateway.authenticate(f"token-{other.id}")).followed_at is None


def test_what_an_agent_learned_is_kept_and_handed_to_its_next_process(fleet, store):
    gateway, (agent, other, _), _, _ = fleet
    fda = {"score": 0.04, "trades": 2, "weight": 1.2}
    beat(gateway, agent, 5, catalysts={"fda": fda})
    gateway.flush()
    assert json.loads(store.get(agent.id).catalysts) == {"fda": fda}
    beat(gateway, agent, 6)  # an older image reports none: what was learned stays
    gateway.flush()
    assert json.loads(store.get(agent.id).catalysts) == {"fda": fda}

    booted = gateway.bootstrap(gateway.authenticate(f"token-{agent.id}"))
    assert booted.catalysts == {"fda": fda}
    assert Bootstrap.from_json(booted.to_json()).catalysts == {"fda": fda}  # over the wire
    # a process that dies right after a trade closed: its last beat is not written yet
    rating = {"score": -0.1, "trades": 1, "weight": 0.5}
    beat(gateway, agent, 7, catalysts={"fda": fda, "rating": rating})
    booted = gateway.bootstrap(gateway.authenticate(f"token-{agent.id}"))
    assert booted.catalysts == {"fda": fda, "rating": rating}
    assert gateway.bootstrap(gateway.authenticate(f"token-{other.id}")).catalysts is None


def test_the_event_behind_each_open_trade_is_kept_for_the_next_process(fleet, store):
    gateway, (agent, other, _), _, _ = fleet
    mrna = {"catalyst": "fda", "entry": 101.5}
    xom = {"catalyst": "m&a", "entry": 80.0}
    beat(gateway, agent, 5, open_trades={"XOM": xom, "MRNA": mrna})
    gateway.flush()
    assert store.get(agent.id).open_trades == json.dumps(
        {"MRNA": mrna, "XOM": xom}, separators=(",", ":")
    )  # one text for the same trades, in any order, so an unchanged one is not written
    beat(gateway, agent, 6)  # an older image reports none: what was kept stays
    gateway.flush()
    booted = gateway.bootstrap(gateway.authenticate(f"token-{agent.id}"))
    assert Bootstrap.from_json(booted.to_json()).open_trades == {"MRNA": mrna, "XOM": xom}
    # XOM sold, then the process died before its last beat was written
    beat(gateway, agent, 7, open_trades={"MRNA": mrna})
    booted = gateway.bootstrap(gateway.authenticate(f"token-{agent.id}"))
    assert booted.open_trades == {"MRNA": mrna}
    beat(gateway, agent, 8, open_trades={})  # everything sold: none left is kept too
    gateway.flush()
    assert json.loads(store.get(agent.id).open_trades) == {}
    assert gateway.bootstrap(gateway.authenticate(f"token-{agent.id}")).open_trades == {}
    assert gateway.bootstrap(gateway.authenticate(f"token-{other.id}")).open_trades is None


def test_the_kill_switch_and_retirement_reach_the_next_reply(fleet, store):
    gateway, (agent, other, _), _, _ = fleet
    store.set_paused(True, T0)
    assert beat(gateway, agent, 1).paused is True  # at once, not a second later
    store.set_paused(False, T0)
    assert beat(gateway, agent, 2).paused is False
    store.transition(agent.id, "retire_requested", "bye", T0, phase=Phase.RETIRING)
    assert beat(gateway, agent, 3).retire is True  # the token's memory was forgotten
    assert beat(gateway, other, 3).retire is False


def test_a_revoked_token_is_refused_at_once(fleet, store):
    gateway, (agent, *_), _, _ = fleet
    token = f"token-{agent.id}"
    assert gateway.authenticate(token) is not None
    store.transition(agent.id, "retired", "gone", T0, phase=Phase.RETIRED, token_hash=None)
    assert gateway.authenticate(token) is None


def test_a_change_to_one_agent_forgets_that_agent_only(fleet, store):
    gateway, (agent, other, _), _, _ = fleet
    for a in (agent, other):
        assert gateway.authenticate(f"token-{a.id}") is not None
    store.transition(agent.id, "retire_requested", "bye", T0, phase=Phase.RETIRING)
    assert gateway.remembered(f"token-{agent.id}") is None  # asked of the store again
    assert gateway.authenticate(f"token-{agent.id}").phase == Phase.RETIRING
    assert gateway.remembered(f"token-{other.id}").id == other.id  # still from memory


def test_a_refresh_keeps_the_fleet_remembered_with_one_query(fleet, store, monkeypatch):
    gateway, (agent, other, gone), _, _ = fleet
    clock = [1000.0]
    monkeypatch.setattr("orchestrator.gateway.agents.time.monotonic", lambda: clock[0])
    for a in (agent, other, gone):
        assert gateway.authenticate(f"token-{a.id}") is not None
    store.transition(gone.id, "retired", "gone", T0, phase=Phase.RETIRED, token_hash=None)
    clock[0] += TOKEN_MEMORY_SECONDS / 2
    gateway.refresh()
    clock[0] += TOKEN_MEMORY_SECONDS * 0.9  # past the first lookup's memory

    lookups = []
    monkeypatch.setattr(store, "by_token_hashes", lambda digests: lookups.append(digests) or {})
    assert gateway.remembered(f"token-{agent.id}").id == agent.id
    assert gateway.remembered(f"token-{other.id}").id == other.id
    assert gateway.authenticate(f"token-{gone.id}") is None and len(lookups) == 1
    clock[0] += TOKEN_MEMORY_SECONDS  # and with no refresh since, forgotten
    assert gateway.remembered(f"token-{agent.id}") is None


def test_a_refresh_that_reads_while_an_agent_changes_refreshes_nothing(fleet, store, monkeypatch):
    gateway, (agent, other, _), _, _ = fleet
    clock = [1000.0]
    monkeypatch.setattr("orchestrator.gateway.agents.time.monotonic", lambda: clock[0])
    for a in (agent, other):
        gateway.authenticate(f"token-{a.id}")
    read = store.by_token_hashes

    def read_while_retiring(digests):
        found = read(digests)  # the agent as it was…
        store.transition(agent.id, "retire_requested", "bye", T0, phase=Phase.RETIRING)
        return found

    monkeypatch.setattr(store, "by_token_hashes", read_while_retiring)
    clock[0] += TOKEN_MEMORY_SECONDS / 2
    gateway.refresh()
    clock[0] += TOKEN_MEMORY_SECONDS * 0.9
    assert gateway.remembered(f"token-{other.id}") is None  # nothing was refreshed
    assert gateway.authenticate(f"token-{agent.id}").phase == Phase.RETIRING  # …is not kept


def test_a_phase_set_while_a_batch_is_written_is_not_undone(fleet, store):
    """On SQLite a batch's read and write are not one transaction: an agent retired in
    between stays retiring (on PostgreSQL the row lock makes the retirement wait)."""
    gateway, (agent, *_), _, _ = fleet  # starting: its first beat would make it running
    beat(gateway, agent, 1)
    retiring = []

    def retire_in_between(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("UPDATE agents") and not retiring:
            retiring.append(
                threading.Thread(
                    target=store.transition,
                    args=(agent.id, "retire_requested", "bye", T0),
                    kwargs={"phase": Phase.RETIRING},
                )
            )
            retiring[0].start()
            retiring[0].join(timeout=2)  # done on SQLite; waiting on the lock on PostgreSQL

    sa.event.listen(store.engine, "before_cursor_execute", retire_in_between)
    try:
        gateway.flush()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", retire_in_between)
    retiring[0].join()
    assert store.get(agent.id).phase == Phase.RETIRING


def test_a_store_that_cannot_take_a_batch_keeps_it_for_the_next_flush(fleet, store):
    gateway, agents, health, _ = fleet
    for agent in agents:
        beat(gateway, agent, 5)
    with store.engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE agents RENAME TO agents_away"))
    try:
        assert gateway.flush() == 0
        assert any("heartbeats" in problem for problem in health.problems())
        beat(gateway, agents[0], 6)  # newer than the kept one
    finally:
        with store.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE agents_away RENAME TO agents"))
    assert gateway.flush() == 4
    assert [store.get(a.id).last_cycle for a in agents] == [6, 5, 5]
    assert not any("heartbeats" in problem for problem in health.problems())


def test_equity_alarms_sound_when_the_batch_is_written(fleet, store):
    gateway, (agent, *_), _, clock = fleet
    beat(gateway, agent, 1, equity=100_000.0)
    gateway.flush()
    clock[0] = T0 + timedelta(minutes=5)
    beat(gateway, agent, 2, equity=10.0)  # below the rail's equity floor
    assert not store.get(agent.id).alarms  # not before the write
    gateway.flush()
    assert store.get(agent.id).alarms


def test_positions_listed_for_many_agents_are_written_together(fleet, store):
    from orchestrator.state.orders import OrderBook

    _, (a, b, _), _, _ = fleet
    held = [{"symbol": "AAPL", "qty": 3.0, "avg_price": 10.0, "price": 11.0, "unrealized_pl": 3.0}]
    OrderBook(store).record_positions(
        {a.id: (held, T0), b.id: ([], T0), "no-such-agent": (held, T0)}
    )
    assert json.loads(store.get(a.id).positions) == held
    assert json.loads(store.get(b.id).positions) == []
    assert utc(store.get(a.id).positions_at) == T0


def lane_call(lane, agent, *chunks: bytes, path="/v1/agent/heartbeat"):
    """Drive the lane as the Gatekeeper does (the agent in the scope, the body in
    `chunks`); returns the status, the answer's body, and what reached the route."""
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent, routed = [], []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message)

    async def route(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        routed.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"routed"})

    lane.app = route
    scope = {"type": "http", "method": "POST", "path": path, "state": {"agent": agent}}
    asyncio.run(lane(scope, receive, send))
    return sent[0]["status"], sent[-1]["body"], routed


def test_a_plain_beat_takes_its_own_lane_and_anything_else_goes_on_to_the_route(
    fleet, store, monkeypatch
):
    gateway, (agent, other, _), _, _ = fleet
    caller = gateway.authenticate(f"token-{agent.id}")
    lane = HeartbeatLane(None, gateway)
    store.paused()  # the kill switch is in memory

    status, body, routed = lane_call(lane, caller, b'{"cycle": 5, ', b'"equity": 1000.5}')
    assert (status, json.loads(body), routed) == (200, {"paused": False, "retire": False}, [])

    # invalid, of another type (read as 8, a beat of 6 would be behind), behind, not JSON
    for refused in (b'{"cycle": -1}', b'{"cycle": "8"}', b'{"cycle": 8.0}', b'{"cycle": 4}', b"x"):
        assert lane_call(lane, caller, refused) == (299, b"routed", [refused])
    beats = b'{"cycle": 6}'
    assert lane_call(lane, caller, beats, path="/v1/agent/decisions")[2] == [beats]

    monkeypatch.setattr("orchestrator.state.store.PAUSE_READ_SECONDS", 0)
    assert lane_call(lane, caller, beats)[:2] == (200, b'{"paused":false,"retire":false}')
    with store.engine.begin() as connection:  # the kill switch cannot be read
        connection.execute(sa.text("ALTER TABLE fleet_state RENAME TO fleet_state_away"))
    try:
        status, body, routed = lane_call(lane, caller, b'{"cycle": 7}')
    finally:
        with store.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE fleet_state_away RENAME TO fleet_state"))
    assert (status, json.loads(body)["error"]["code"], routed) == (503, "store_unavailable", [])

    assert gateway.flush() == 3  # only the beats the lane took
    written = store.get(agent.id)
    assert written.last_cycle == 7
    assert store.get(other.id).last_cycle is None


def test_a_beat_counts_towards_the_market_day_orders_are_counted_on(fleet, store, tmp_path):
    gateway, (first, second, _), health, clock = fleet
    beat(gateway, first, 1, equity=1000.0)
    clock[0] = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # past midnight UTC, 20:00 in New York
    beat(gateway, first, 2, equity=1100.0)
    gateway.flush()
    written = store.get(first.id)
    assert (written.equity_day, written.day_start_equity) == ("2026-03-02", 1000.0)

    noon = datetime.now(UTC).replace(hour=17, minute=0)  # 12:00 or 13:00 in New York
    sped_up = Settings(state_dir=tmp_path, market_time_scale=24, market_anchor=noon)
    gateway = AgentGateway(store, None, health, sped_up, lambda: clock[0])
    clock[0] = noon + timedelta(hours=1)  # a market day later, on a market 24 times as fast
    beat(gateway, second, 1, equity=1000.0)
    gateway.flush()
    assert store.get(second.id).equity_day == (noon.date() + timedelta(days=1)).isoformat()
