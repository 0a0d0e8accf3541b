"""Act on events that move prices — FDA decisions, earnings surprises, rating changes —
with a quick entry and a quick exit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from agent_runtime.risk import Book, Intent
from agent_runtime.strategies._base import MarketView, days_held, eligible

NAME = "event_driven"
VERSION = 1

# How much each event type is worth acting on.
EVENT_WEIGHT = {"fda": 1.0, "earnings": 0.8, "rating": 0.6, "guidance": 0.7, "m&a": 0.9}


def propose(
    personality: Mapping, view: MarketView, book: Book, now: datetime, **hooks: object
) -> list[Intent]:
    """Trade the catalyst; `catalyst_weights` (learned) tilt the event weights."""
    tilt = hooks.get("catalyst_weights") or {}
    since = now - timedelta(hours=12)
    allowed = set(eligible(personality, view))
    intents, seen = [], set()
    for item in sorted(view.news, key=lambda n: n.published_at, reverse=True):
        weight = EVENT_WEIGHT.get(item.event_type or "", 0.0) * float(
            tilt.get(item.event_type, 1.0)
        )
        if item.published_at <= since or weight == 0 or item.symbol in seen:
            continue
        seen.add(item.symbol)
        held = book.positions.get(item.symbol, 0) > 0
        if item.score >= 0.3 and not held and item.symbol in allowed:
            intents.append(
                Intent(
                    item.symbol,
                    "buy",
                    min(1.0, weight * item.score * 1.5),
                    f"{item.event_type} catalyst ({item.score:+.2f})",
                    catalyst=item.event_type,
                )
            )
        elif item.score <= -0.3 and held:
            intents.append(
                Intent(item.symbol, "sell", 1.0, f"negative {item.event_type} ({item.score:+.2f})")
            )
    quick = max(0.25, float(personality.get("holding_days", 1)) / 2)
    for symbol, qty in book.positions.items():
        if qty > 0 and symbol not in seen and days_held(view, symbol, now) >= quick:
            intents.append(Intent(symbol, "sell", 1.0, "event trade held long enough"))
    return intents
