"""Follow sector-level sentiment within the preferred sectors and hold for weeks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from agent_runtime.risk import Book, Intent
from agent_runtime.strategies._base import MarketView, eligible, mood_by_symbol

NAME = "sector_rotation"
VERSION = 2


def propose(
    personality: Mapping, view: MarketView, book: Book, now: datetime, **_hooks: object
) -> list[Intent]:
    """Rotate into the sector the news favours."""
    mood = mood_by_symbol(personality, view, now - timedelta(days=7))
    by_sector: dict[str, list[float]] = {}
    for symbol, score in mood.items():
        if symbol in view.sectors:
            by_sector.setdefault(view.sectors[symbol], []).append(score)
    trend = {sector: sum(v) / len(v) for sector, v in by_sector.items()}
    preferred = set(personality.get("sector_preferences") or trend)
    ranked = sorted((s for s in trend if s in preferred), key=trend.get, reverse=True)
    leader = ranked[0] if ranked and trend[ranked[0]] > 0.1 else None
    intents = []
    for symbol, qty in book.positions.items():
        sector = view.sectors.get(symbol)
        if qty > 0 and (
            trend.get(sector, 0.0) < -0.1
            or (leader and sector != leader and trend.get(sector, 0) < 0.05)
        ):
            intents.append(
                Intent(
                    symbol, "sell", 1.0, f"rotating out of {sector} ({trend.get(sector, 0):+.2f})"
                )
            )
    if leader:
        picks = [s for s in eligible(personality, view) if view.sectors[s] == leader]
        for symbol in sorted(picks, key=lambda s: mood.get(s, 0.0), reverse=True)[:2]:
            if book.positions.get(symbol, 0) <= 0:
                intents.append(
                    Intent(
                        symbol,
                        "buy",
                        min(1.0, trend[leader] * 2),
                        f"{leader} leads on news ({trend[leader]:+.2f})",
                    )
                )
    return intents
