"""The offline default provider: news and quotes of the simulated market.

Shares the seed and clock with the sandbox platform, so what agents read here is what
they fill at there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from feeds.clock import MarketClock
from feeds.market import SimulatedMarket
from feeds.sources import NewsItem, Quote
from feeds.universe import security


class SimulatedProvider:
    """Both a NewsSource and a QuoteSource over one simulated market."""

    name = "simulated"
    batch = True

    def __init__(self, market: SimulatedMarket, clock: MarketClock) -> None:
        self.market = market
        self.clock = clock

    def news(self, symbols: Sequence[str], since: datetime) -> list[NewsItem]:
        """The market's company events since `since`, as wire stories."""
        known = [s for s in symbols if security(s) is not None]
        events = self.market.events(known, since, self.clock.now())
        return [
            NewsItem(
                id=e.id,
                published_at=e.at,
                headline=e.headline,
                summary=f"{e.headline}. ({e.symbol}, {e.event_type})",
                source="simulated-wire",
                symbols=(e.symbol,),
            )
            for e in events
        ]

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """Current prices of the known symbols."""
        now = self.clock.now()
        return [
            Quote(s.upper(), self.market.price(s, now), now)
            for s in symbols
            if security(s) is not None
        ]
