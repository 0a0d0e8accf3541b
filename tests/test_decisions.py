"""Decision records replay: the same inputs through the same strategy version give the
same decision. On records that real agents sent (a social fleet run against the sandbox,
kept in tests/payloads) and on hand-built ones; purely, no I/O."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_runtime.decisions import Inputs, ReplayError, decide, record, replay, sampled
from agent_runtime.risk import Book, RiskLimits
from agent_runtime.strategies._base import MarketView, NewsView, SocialView

RECORDED = json.loads((Path(__file__).parent / "payloads" / "decision-records.json").read_text())
COMPARED = ("proposals", "dropped", "clamped", "orders", "error")
NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)


@pytest.mark.parametrize("recorded", RECORDED, ids=lambda r: f"{r['strategy']}-{r['cycle']}")
def test_a_recorded_decision_replays_to_the_same_decision(recorded):
    assert replay(recorded) == {k: recorded[k] for k in COMPARED}


def test_the_recorded_set_holds_orders_and_social_inputs():
    assert any(r["orders"] and r["inputs"]["social"] for r in RECORDED)
    assert any(not r["orders"] for r in RECORDED)


def test_a_changed_input_changes_the_decision():
    (bought,) = [r for r in RECORDED if any(o["side"] == "buy" for o in r["orders"])][:1] or [None]
    recorded = bought or next(r for r in RECORDED if r["orders"])
    tampered = copy.deepcopy(recorded)
    tampered["inputs"]["paused"] = True  # the kill switch: the rails drop everything
    again = replay(tampered)
    assert again["orders"] == [] and {d["reason"] for d in again["dropped"]} == {"fleet paused"}


def test_a_record_of_another_strategy_version_is_not_replayed():
    other = copy.deepcopy(RECORDED[0])
    other["strategy_version"] += 1
    with pytest.raises(ReplayError, match=f"v{other['strategy_version']}; this agent has v"):
        replay(other)
    with pytest.raises(ReplayError, match="record version"):
        replay({**RECORDED[0], "v": 99})


def test_a_hand_built_decision_records_what_the_rails_clamped_and_replays():
    inputs = Inputs(
        strategy="news_momentum",
        personality={
            "news_weight": 1.0,
            "sentiment_weight": 1.0,
            "position_fraction": 0.5,  # asks for half the equity…
            "sector_preferences": ["Technology"],
        },
        limits=RiskLimits(0.1, 10, 1000, 20),  # …the rails allow a tenth
        view=MarketView(
            prices={"AAPL": 100.0},
            news=[NewsView("AAPL", 0.9, 1.0, "earnings", NOW, id="n-7")],
            sectors={"AAPL": "Technology"},
            caps={"AAPL": "large"},
            social=[SocialView("AAPL", "buy", "famous-fox", NOW)],
        ),
        book=Book(100_000, 100_000, {}),
        now=NOW,
        orders_today=0,
        paused=False,
        catalyst_weights={},
    )
    decision = decide(inputs)
    kept = json.loads(json.dumps(record(7, inputs, decision, {("AAPL", "buy"): "x-7-AAPL-buy"})))
    assert kept["clamped"] == [
        {"symbol": "AAPL", "side": "buy", "reason": "position cap of 10% of equity"}
    ]
    assert kept["orders"] == [
        {
            "client_order_id": "x-7-AAPL-buy",
            "symbol": "AAPL",
            "side": "buy",
            "qty": 100,
            "rationale": "fresh positive mood (+1.00)",
        }
    ]
    assert kept["inputs"]["headlines"][0]["id"] == "n-7"
    assert kept["inputs"]["social"] == [
        {"followee": "famous-fox", "symbol": "AAPL", "side": "buy", "at": NOW.isoformat()}
    ]
    assert replay(kept) == {k: kept[k] for k in COMPARED}


def test_decisions_without_orders_are_sampled_the_same_way_every_time():
    chosen = [cycle for cycle in range(10_000) if sampled("agent-1", cycle, 0.1)]
    assert 900 < len(chosen) < 1100
    assert chosen == [cycle for cycle in range(10_000) if sampled("agent-1", cycle, 0.1)]
    assert not any(sampled("agent-1", cycle, 0.0) for cycle in range(1000))
