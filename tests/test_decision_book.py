"""Decision records and follows in the store, on SQLite and PostgreSQL: a resent batch
adds nothing, an order finds the decision that sent it, each agent's records are kept
within a daily budget, the follow book keeps what the platform confirmed, and retention
takes old records with their links."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from orchestrator.gateway.decisions import DecisionBatch, DecisionIntake, OverBudget
from orchestrator.lifecycle import Phase
from orchestrator.operations.why import explain, graph, reason
from orchestrator.state.decisions import DecisionBook
from orchestrator.state.errors import DatabaseError
from orchestrator.state.follows import FollowBook, FollowChange
from orchestrator.state.health import StoreHealth
from orchestrator.state.orders import OrderBook, PlacedOrder
from orchestrator.state.retention import compact
from orchestrator.state.tables import Agent, DecisionOrder, Follow, utc

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _agent(store, name="a"):
    (agent,), _ = store.spawn(
        f"key-{name}", [{"name": name, "strategy": "news_momentum"}], lambda i: f"h-{i}", NOW
    )
    return agent


def _record(cycle, orders=(), social=()):
    return {
        "v": 1,
        "cycle": cycle,
        "at": (NOW + timedelta(minutes=cycle)).isoformat(),
        "strategy": "news_momentum",
        "strategy_version": 2,
        "inputs": {
            "headlines": [{"id": "n-1", "symbol": "AAPL", "score": 0.7}],
            "social": [{"followee": "famous-fox", "symbol": "AAPL", "side": "buy"}] * len(social),
        },
        "proposals": [
            {"symbol": "AAPL", "side": "buy", "conviction": 0.8, "rationale": "fresh <b>mood</b>"}
        ],
        "dropped": [],
        "clamped": [{"symbol": "AAPL", "side": "buy", "reason": "cash of $900"}],
        "orders": [
            {"client_order_id": cid, "symbol": "AAPL", "side": "buy", "qty": 3, "rationale": ""}
            for cid in orders
        ],
        "error": None,
    }


def test_a_resent_batch_adds_nothing_and_an_order_finds_its_decision(store):
    agent = _agent(store)
    book = DecisionBook(store)
    batch = [_record(1, ["a-1-AAPL-buy"], social=[1]), _record(2)]
    assert book.keep(agent.id, batch, NOW) == {1, 2}
    assert book.keep(agent.id, batch, NOW) == set()  # the agent did not hear the answer
    assert book.keep(agent.id, [*batch, _record(3)], NOW) == {3}
    assert [d.cycle for d in book.latest(agent.id, 10)] == [3, 2, 1]

    placed = PlacedOrder("a-1-AAPL-buy", "o-77", "AAPL", "buy", "filled", 3, 101.0, None, NOW, "x")
    OrderBook(store).record(agent.id, placed, "fresh <b>mood</b>", NOW)
    for ref in ("o-77", "a-1-AAPL-buy"):
        order, decision = book.for_order(ref)
        assert order.client_order_id == "a-1-AAPL-buy" and decision.cycle == 1
    assert book.for_order("nothing") is None
    lines = explain(decision)
    assert lines[0].startswith("cycle 1 at 2026-12-01 12:01") and "1 order" in lines[0]
    assert "  social: famous-fox buy AAPL" in lines and "  headlines: AAPL +0.70 [n-1]" in lines
    assert "  rails clamped buy AAPL: cash of $900" in lines
    records = book.reasons(agent.id, ["a-1-AAPL-buy", "unknown"])
    assert reason(records["a-1-AAPL-buy"], "a-1-AAPL-buy") == (
        "fresh <b>mood</b>; rails: cash of $900; 1 followed trade in AAPL"
    )


def test_an_agent_keeps_records_within_its_budget_for_the_trading_day(store):
    """A hostile agent cannot grow the store without bound: past its budget a batch is
    refused whole; other agents, and the next trading day, are unaffected."""
    hostile, other = _agent(store, "hostile"), _agent(store, "other")
    market = [NOW]
    one = len(json.dumps(DecisionBatch(records=[_record(1)]).records[0].model_dump(mode="json")))
    intake = DecisionIntake(
        store, StoreHealth(lambda: NOW), lambda: NOW, lambda: market[0], budget=int(2.5 * one)
    )
    book = DecisionBook(store)

    def send(agent, *cycles):
        return intake.keep(agent, DecisionBatch(records=[_record(c) for c in cycles]))

    assert send(hostile, 1) == {"kept": 1, "received": 1}
    for _ in range(3):  # the agent did not hear the answer: what it sends again costs nothing
        assert send(hostile, 1) == {"kept": 0, "received": 1}
    assert send(hostile, 2) == {"kept": 1, "received": 1}
    with pytest.raises(OverBudget, match=r"trading day 2026-12-01 would pass this agent's budget"):
        send(hostile, 3)
    assert [d.cycle for d in book.latest(hostile.id, 10)] == [2, 1]
    assert send(other, 1, 2) == {"kept": 2, "received": 2}  # a budget of its own

    market[0] = NOW + timedelta(days=1)  # the next trading day, by the market's clock
    with store.engine.begin() as connection:  # a store that fails holds nothing of the budget
        connection.execute(sa.text("ALTER TABLE decisions RENAME TO decisions_away"))
    try:
        with pytest.raises(DatabaseError):
            send(hostile, 3, 4)
    finally:
        with store.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE decisions_away RENAME TO decisions"))
    assert send(hostile, 3, 4) == {"kept": 2, "received": 2}
    with pytest.raises(OverBudget):
        send(hostile, 5)
    assert [d.cycle for d in book.latest(hostile.id, 10)] == [4, 3, 2, 1]


def test_the_follow_book_keeps_what_the_platform_confirmed(store):
    a, b = _agent(store, "a"), _agent(store, "b")
    follows = FollowBook(store)
    follows.record(
        [
            FollowChange(a.id, "followed", ("u-b",), NOW),
            FollowChange(a.id, "followed", ("u-b",), NOW),  # the same answer seen twice
            FollowChange(a.id, "followed", ("u-c",), NOW),
            FollowChange(b.id, "followed", ("u-a",), NOW),
            FollowChange("gone", "followed", ("u-a",), NOW),  # an agent no longer stored
            FollowChange(a.id, "unfollowed", ("u-c",), NOW),
        ]
    )
    assert sorted(follows.edges()) == sorted([(a.id, "u-b"), (b.id, "u-a")])
    later = NOW + timedelta(minutes=1)
    follows.record([FollowChange(a.id, "listed", ("u-x", "u-b"), later)])  # the truth
    assert sorted(follows.edges()) == sorted([(a.id, "u-b"), (a.id, "u-x"), (b.id, "u-a")])
    with store.session() as s:  # a follow kept keeps its first day
        since = dict(s.exec(select(Follow.followee_user_id, Follow.since)).all())
    assert (utc(since["u-b"]), utc(since["u-x"])) == (NOW, later)
    follows.record(
        [
            FollowChange(b.id, "listed", (), NOW),
            FollowChange(b.id, "followed", ("u-z",), NOW),  # in order: after the listing
            FollowChange(a.id, "unfollowed", ("u-b",), NOW),
        ]
    )
    assert sorted(follows.edges()) == sorted([(a.id, "u-x"), (b.id, "u-z")])
    follows.record(
        [FollowChange(b.id, "listed", (), NOW), FollowChange(a.id, "listed", ("u-x", "u-y"), NOW)]
    )
    assert sorted(follows.edges()) == [(a.id, "u-x"), (a.id, "u-y")]

    with store.session() as s:  # b's platform account is u-x: a follows an agent and a person
        row = s.get(Agent, b.id)
        row.platform_user_id = "u-x"
        s.add(row)
        s.commit()
    assert follows.around(a.id, None) == (sorted([b.name, "u-y"]), [])
    assert follows.around(b.id, "u-x") == ([], [a.name])


def test_a_retired_agent_has_left_the_follow_graph(store):
    a, b, c = (_agent(store, name) for name in "abc")
    with store.session() as s:
        for agent, user_id in ((a, "u-a"), (b, "u-b"), (c, "u-c")):
            row = s.get(Agent, agent.id)
            row.platform_user_id = user_id
            s.add(row)
        s.commit()
    follows = FollowBook(store)
    follows.record(
        [
            FollowChange(a.id, "listed", ("u-b", "u-person"), NOW),
            FollowChange(b.id, "listed", ("u-a", "u-c"), NOW),
            FollowChange(c.id, "listed", ("u-b",), NOW),
        ]
    )
    assert follows.around(a.id, "u-a") == (sorted([b.name, "u-person"]), [b.name])
    assert graph(store)["nodes"][0] == {"name": b.name, "followers": 2}

    with store.session() as s:  # b retires: its account leaves the platform's graph
        row = s.get(Agent, b.id)
        row.phase = Phase.RETIRED
        s.add(row)
        s.commit()
    assert follows.around(a.id, "u-a") == (["u-person"], [])
    assert follows.around(b.id, "u-b") == ([], [])
    assert follows.around(c.id, "u-c") == ([], [])
    assert follows.edges() == [(a.id, "u-person")]
    assert graph(store) == {
        "nodes": [{"name": a.name, "followers": 0}, {"name": c.name, "followers": 0}],
        "edges": [],
    }


def test_retention_takes_old_decision_records_and_their_links(store):
    agent = _agent(store)
    book = DecisionBook(store)
    book.keep(agent.id, [_record(1, ["a-1-AAPL-buy"])], NOW - timedelta(days=40))
    book.keep(agent.id, [_record(2, ["a-2-AAPL-buy"])], NOW - timedelta(days=1))
    done = compact(store, NOW - timedelta(days=30))
    assert done.decisions == 1
    assert [d.cycle for d in book.latest(agent.id, 10)] == [2]
    with store.session() as s:
        links = s.exec(select(DecisionOrder.client_order_id)).all()
    assert links == ["a-2-AAPL-buy"]
    assert json.loads(json.dumps(book.latest(agent.id, 1)[0].record))["cycle"] == 2
