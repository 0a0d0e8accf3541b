"""Buy on strong, fresh positive sentiment, scaled by news sensitivity; ride it 1–5 days,
exit as the story fades or turns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from agent_runtime.risk import Book, Intent
from agent_runtime.strategies._base import (
    MarketView,
    days_held,
    eligible,
    mood_by_symbol,
)

NAME = "news_momentum"
VERSION = 2


def propose(
    personality: Mapping, view: MarketView, book: Book, now: datetime, **_hooks: object
) -> list[Intent]:
    """Momentum on news, moved by what followed accounts trade."""
    weight = float(personality.get("news_weight", 0.5))
    fresh = mood_by_symbol(personality, view, now - timedelta(days=1))
    ride = min(5.0, max(1.0, float(personality.get("holding_days", 2))))
    intents = []
    for symbol, qty in book.positions.items():
        if qty <= 0:
            continue
        mood = fresh.get(symbol, 0.0)
        if mood < -0.2 or (days_held(view, symbol, now) >= ride and mood < 0.3):
            intents.append(
                Intent(
                    symbol,
                    "sell",
                    1.0,
                    f"story faded after {days_held(view, symbol, now):.1f}d "
                    f"(sentiment {mood:+.2f})",
                )
            )
    threshold = 0.6 - 0.35 * weight
    for symbol in eligible(personality, view):
        mood = fresh.get(symbol, 0.0)
        if mood >= threshold and book.positions.get(symbol, 0) <= 0:
            conviction = min(1.0, mood * (0.5 + weight))
            intents.append(Intent(symbol, "buy", conviction, f"fresh positive mood ({mood:+.2f})"))
    return intents
