"""What every strategy sees and returns, and the universe filter they all share.

A strategy is one module with `NAME`, `VERSION` and a pure
`propose(personality, view, book, now, **hooks) -> list[Intent]`. It proposes; the risk
rails dispose. No I/O here: whatever needs the network (quotes, news, the LLM) is fetched
by the cycle and handed in through the `MarketView`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from agent_runtime.risk import NOTHING

INTERFACE_VERSION = 1
SOCIAL_REACH = 0.5  # the most followed accounts' trades can move an agent's mood


class NewsView(NamedTuple):
    """One scored headline, as the gateway serves it."""

    symbol: str
    score: float  # −1..1
    relevance: float
    event_type: str | None
    published_at: datetime
    headline: str = ""
    id: str = ""


class SocialView(NamedTuple):
    """A fill by an account this agent follows, as the platform's feed shows it."""

    symbol: str
    side: str  # buy | sell
    followee: str  # the account's display name
    at: datetime


class MarketView(NamedTuple):
    """Everything a strategy may look at in one cycle."""

    prices: Mapping[str, float]
    news: Sequence[NewsView]
    sectors: Mapping[str, str]  # symbol → sector
    caps: Mapping[str, str]  # symbol → large | mid | small
    returns: Mapping[str, float] = NOTHING  # recent return per symbol
    held_since: Mapping[str, datetime] = NOTHING
    entry_prices: Mapping[str, float] = NOTHING
    assessment: Mapping | None = None  # the LLM's answer, for llm_analyst
    social: Sequence[SocialView] = ()  # recent fills of the accounts it follows


def eligible(personality: Mapping, view: MarketView) -> list[str]:
    """Symbols the personality's sectors and market-cap bias allow, with a price."""
    sectors = set(personality.get("sector_preferences") or view.sectors.values())
    bias = personality.get("market_cap_bias", "mixed")
    return sorted(
        s
        for s, sector in view.sectors.items()
        if sector in sectors and (bias == "mixed" or view.caps.get(s) == bias) and s in view.prices
    )


def sentiment_by_symbol(view: MarketView, since: datetime) -> dict[str, float]:
    """Relevance-weighted mean sentiment per symbol of the news after `since`."""
    sums: dict[str, list[float]] = {}
    for item in view.news:
        if item.published_at > since:
            total = sums.setdefault(item.symbol, [0.0, 0.0])
            total[0] += item.score * item.relevance
            total[1] += item.relevance
    return {s: t / w for s, (t, w) in sums.items() if w > 0}


def social_by_symbol(view: MarketView, since: datetime) -> dict[str, float]:
    """Net buying by followed accounts per symbol after `since`, in −1..1: one buy is 0.5,
    three are 0.75; buys and sells cancel."""
    net: dict[str, list[int]] = {}
    for trade in view.social:
        if trade.at > since and trade.side in ("buy", "sell"):
            counts = net.setdefault(trade.symbol, [0, 0])
            counts[trade.side == "sell"] += 1
    return {s: (buys - sells) / (buys + sells + 1) for s, (buys, sells) in net.items()}


def mood_by_symbol(personality: Mapping, view: MarketView, since: datetime) -> dict[str, float]:
    """News sentiment moved by what followed accounts trade: toward them by up to
    `SOCIAL_REACH × sentiment_weight`, or against them as `contrarian_tendency` passes 0.5.
    A zero `sentiment_weight` leaves the news alone."""
    mood = sentiment_by_symbol(view, since)
    lean = 1 - 2 * float(personality.get("contrarian_tendency", 0.0))
    pull = SOCIAL_REACH * float(personality.get("sentiment_weight", 0.0)) * lean
    if pull:
        for symbol, net in social_by_symbol(view, since).items():
            mood[symbol] = max(-1.0, min(1.0, mood.get(symbol, 0.0) + pull * net))
    return mood


def days_held(view: MarketView, symbol: str, now: datetime) -> float:
    """How long the position has been held, in days (0 if unknown)."""
    since = view.held_since.get(symbol)
    return (now - since).total_seconds() / 86400 if since else 0.0
