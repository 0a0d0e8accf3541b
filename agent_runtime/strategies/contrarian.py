"""Buy oversold names that the news hates, when the personality leans contrarian; take
10–20 % or cut at the stop."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from agent_runtime.risk import Book, Intent
from agent_runtime.strategies._base import (
    MarketView,
    eligible,
    sentiment_by_symbol,
    social_by_symbol,
)

NAME = "contrarian"
VERSION = 2


def propose(
    personality: Mapping, view: MarketView, book: Book, now: datetime, **_hooks: object
) -> list[Intent]:
    """Fade the crowd: the news's and the followed accounts'."""
    tendency = float(personality.get("contrarian_tendency", 0.0))
    target = 0.10 + 0.10 * tendency
    stop = float(personality.get("stop_loss", 0.05))
    intents = []
    for symbol, qty in book.positions.items():
        entry, price = view.entry_prices.get(symbol), view.prices.get(symbol)
        if qty <= 0 or not entry or not price:
            continue
        change = price / entry - 1
        if change >= target or change <= -stop:
            why = "target reached" if change >= target else "stopped out"
            intents.append(Intent(symbol, "sell", 1.0, f"{why} ({change:+.1%})"))
    if tendency < 0.5:
        return intents
    since = now - timedelta(days=2)
    mood, crowd = sentiment_by_symbol(view, since), social_by_symbol(view, since)
    # The crowd it follows buying a name is a reason to stay out; the crowd dumping it, a
    # reason to lean in: as strongly as the agent heeds social sentiment.
    heed = float(personality.get("sentiment_weight", 0.0))
    for symbol in eligible(personality, view):
        sentiment, move = mood.get(symbol, 0.0), view.returns.get(symbol, 0.0)
        if sentiment <= -0.3 and move <= -0.05 and book.positions.get(symbol, 0) <= 0:
            tilt = 1 - heed * crowd.get(symbol, 0.0)
            conviction = min(1.0, tendency * (abs(sentiment) + abs(move) * 2) * tilt)
            intents.append(
                Intent(
                    symbol,
                    "buy",
                    conviction,
                    f"oversold {move:+.1%} on bad news ({sentiment:+.2f})",
                )
            )
    return intents
