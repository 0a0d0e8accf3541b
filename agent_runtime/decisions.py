"""Decision records: what an agent saw, what its strategy proposed, what the rails let
through, and the orders that went out; and the replay that checks a record.

A record holds every input of `decide` (compactly: headlines by id with their scores,
never their text; only the symbols the cycle looked at), so the same inputs through the
same strategy version give the same decision: `replay(record)` proves it. Plain JSON,
stdlib only; the orchestrator stores records without trusting them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from agent_runtime.risk import Book, Intent, RiskLimits, Verdict, apply_rails
from agent_runtime.strategies import REGISTRY, MarketView, NewsView, propose_safely
from agent_runtime.strategies._base import SocialView

RECORD_VERSION = 1


class ReplayError(ValueError):
    """A record that cannot be replayed here; the message says why."""


class Inputs(NamedTuple):
    """Everything one decision depends on."""

    strategy: str
    personality: Mapping[str, Any]
    limits: RiskLimits
    view: MarketView
    book: Book
    now: datetime
    orders_today: int
    paused: bool
    catalyst_weights: Mapping[str, float]


class Decision(NamedTuple):
    """What the strategy proposed and what the rails made of it."""

    intents: list[Intent]
    verdict: Verdict
    error: str | None


def decide(inputs: Inputs) -> Decision:
    """Strategy proposes, the rails dispose: one cycle's decision, and a strategy error."""
    intents, error = propose_safely(
        inputs.strategy,
        inputs.personality,
        inputs.view,
        inputs.book,
        inputs.now,
        catalyst_weights=dict(inputs.catalyst_weights),
    )
    verdict = apply_rails(
        intents,
        inputs.book,
        inputs.view.prices,
        paused=inputs.paused,
        limits=inputs.limits,
        position_fraction=float(inputs.personality.get("position_fraction", 0.05)),
        orders_today=inputs.orders_today,
    )
    return Decision(intents, verdict, error)


def sampled(agent_id: str, cycle: int, rate: float) -> bool:
    """Whether a decision without orders is recorded: the same answer on every retry."""
    digest = hashlib.sha256(f"{agent_id}:{cycle}".encode()).digest()
    return int.from_bytes(digest[:4]) / 2**32 < rate


def record(
    cycle: int, inputs: Inputs, decision: Decision, order_ids: Mapping[tuple[str, str], str]
) -> dict[str, Any]:
    """The JSON record of one decision; `order_ids` maps (symbol, side) to client order id."""
    view, strategy = inputs.view, REGISTRY.get(inputs.strategy)
    looked_at = set(view.prices) | {n.symbol for n in view.news} | set(inputs.book.positions)
    return {
        "v": RECORD_VERSION,
        "cycle": cycle,
        "at": inputs.now.isoformat(),
        "strategy": inputs.strategy,
        "strategy_version": getattr(strategy, "VERSION", 0),
        "inputs": {
            "personality": dict(inputs.personality),
            "limits": inputs.limits._asdict(),
            "book": inputs.book._asdict() | {"positions": dict(inputs.book.positions)},
            "orders_today": inputs.orders_today,
            "paused": inputs.paused,
            "catalyst_weights": dict(inputs.catalyst_weights),
            "prices": dict(view.prices),
            "sectors": {s: view.sectors[s] for s in sorted(looked_at) if s in view.sectors},
            "caps": {s: view.caps[s] for s in sorted(looked_at) if s in view.caps},
            "returns": dict(view.returns),
            "held_since": {s: t.isoformat() for s, t in view.held_since.items()},
            "entry_prices": dict(view.entry_prices),
            "assessment": view.assessment,
            "headlines": [
                {
                    "id": n.id,
                    "symbol": n.symbol,
                    "score": n.score,
                    "relevance": n.relevance,
                    "event_type": n.event_type,
                    "published_at": n.published_at.isoformat(),
                }
                for n in view.news
            ],
            "social": [
                {"followee": t.followee, "symbol": t.symbol, "side": t.side, "at": t.at.isoformat()}
                for t in view.social
            ],
        },
        "proposals": [
            {
                "symbol": i.symbol,
                "side": i.side,
                "conviction": i.conviction,
                "rationale": i.rationale,
                "catalyst": i.catalyst,
            }
            for i in decision.intents
        ],
        "dropped": [
            {"symbol": i.symbol, "side": i.side, "reason": why}
            for i, why in decision.verdict.dropped
        ],
        "clamped": [
            {"symbol": o.symbol, "side": o.side, "reason": why}
            for o, why in decision.verdict.clamped
        ],
        "orders": [
            {
                "client_order_id": order_ids.get((o.symbol, o.side), ""),
                "symbol": o.symbol,
                "side": o.side,
                "qty": o.qty,
                "rationale": o.rationale,
            }
            for o in decision.verdict.orders
        ],
        "error": decision.error,
    }


def inputs_of(data: Mapping[str, Any]) -> Inputs:
    """The inputs a record holds; ReplayError if it is not a record this version reads."""
    if data.get("v") != RECORD_VERSION:
        raise ReplayError(f"record version {data.get('v')!r}; this agent reads {RECORD_VERSION}")
    strategy = REGISTRY.get(data["strategy"])
    if strategy is None or data["strategy_version"] != strategy.VERSION:
        have = strategy.VERSION if strategy else "none"
        raise ReplayError(
            f"recorded by {data['strategy']} v{data['strategy_version']}; this agent has v{have}"
        )
    given = data["inputs"]
    view = MarketView(
        prices=given["prices"],
        news=[
            NewsView(
                h["symbol"],
                h["score"],
                h["relevance"],
                h["event_type"],
                datetime.fromisoformat(h["published_at"]),
                id=h["id"],
            )
            for h in given["headlines"]
        ],
        sectors=given["sectors"],
        caps=given["caps"],
        returns=given["returns"],
        held_since={s: datetime.fromisoformat(t) for s, t in given["held_since"].items()},
        entry_prices=given["entry_prices"],
        assessment=given["assessment"],
        social=[
            SocialView(t["symbol"], t["side"], t["followee"], datetime.fromisoformat(t["at"]))
            for t in given["social"]
        ],
    )
    return Inputs(
        strategy=data["strategy"],
        personality=given["personality"],
        limits=RiskLimits(**given["limits"]),
        view=view,
        book=Book(**given["book"]),
        now=datetime.fromisoformat(data["at"]),
        orders_today=given["orders_today"],
        paused=given["paused"],
        catalyst_weights=given["catalyst_weights"],
    )


def replay(data: Mapping[str, Any]) -> dict[str, Any]:
    """Decide again from a record's inputs; the result has the record's shape, so a
    faithful record compares equal on proposals, dropped, clamped and orders."""
    inputs = inputs_of(data)
    ids = {(o["symbol"], o["side"]): o["client_order_id"] for o in data.get("orders", [])}
    again = record(data["cycle"], inputs, decide(inputs), ids)
    return {k: again[k] for k in ("proposals", "dropped", "clamped", "orders", "error")}
