"""The simulated market's prices: a deterministic function of `(seed, market time)`.

Each symbol follows a geometric Brownian motion driven by its sector's factor and its
own noise, plus the reactions to its company events (`feeds.events`):
`log P(t) = log P0 + σ·(β·W_sector(t) + √(1-β²)·W_own(t)) + events(t) − (same at the origin)`.
A Brownian path is built from seeded random numbers at two scales: one Gaussian step per
day (cumulated from a fixed epoch), and a Brownian bridge of one-minute steps inside each
day. So any process, at any time, computes the same price without replaying history,
and prices at the origin equal the universe's starting prices. No I/O, no wall clock.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from functools import lru_cache

from feeds.events import EVENT_RATE_PER_DAY, EventEffects, MarketEvent, events_between
from feeds.universe import UNIVERSE, Security, security

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)  # where every symbol sits at its start price
MINUTES_PER_DAY = 1440


class UnknownSymbol(KeyError):
    """The symbol is not in the simulated universe."""


class _BrownianPath:
    """A standard Brownian motion in days, reproducible from its key."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._daily = [0.0]  # W at the start of day i since EPOCH
        self._steps = random.Random(f"{key}:daily")

    def _at_day(self, day: int) -> float:
        while len(self._daily) <= day:
            self._daily.append(self._daily[-1] + self._steps.gauss(0.0, 1.0))
        return self._daily[day]

    def at(self, days: float) -> float:
        """W(days since EPOCH), at one-minute resolution; negative times clamp to 0."""
        day, minute = divmod(max(0, math.floor(days * MINUTES_PER_DAY)), MINUTES_PER_DAY)
        start, end = self._at_day(day), self._at_day(day + 1)
        return start + (end - start) * minute / MINUTES_PER_DAY + _bridge(self.key, day)[minute]


@lru_cache(maxsize=512)
def _bridge(key: str, day: int) -> tuple[float, ...]:
    """A Brownian bridge from 0 to 0 over one day, in one-minute steps."""
    rng = random.Random(f"{key}:{day}")
    scale = math.sqrt(1 / MINUTES_PER_DAY)
    walk = [0.0]
    for _ in range(MINUTES_PER_DAY):
        walk.append(walk[-1] + rng.gauss(0.0, scale))
    total = walk[-1]
    return tuple(w - total * m / MINUTES_PER_DAY for m, w in enumerate(walk))


def _days(moment: datetime) -> float:
    return (moment - EPOCH).total_seconds() / 86400


class SimulatedMarket:
    """Prices of the built-in universe for one seed."""

    def __init__(self, seed: int, event_rate: float = EVENT_RATE_PER_DAY) -> None:
        self.seed = seed
        self.event_rate = event_rate  # chance of a company event per symbol per day
        self._paths: dict[str, _BrownianPath] = {}
        self._effects = {sec.symbol: EventEffects(seed, sec, event_rate) for sec in UNIVERSE}

    def _path(self, name: str) -> _BrownianPath:
        path = self._paths.get(name)
        if path is None:
            path = self._paths[name] = _BrownianPath(f"{self.seed}:{name}")
        return path

    def _factor(self, sec: Security, days: float) -> float:
        own = math.sqrt(1 - sec.beta**2)
        return sec.beta * self._path(f"sector:{sec.sector}").at(days) + own * self._path(
            f"symbol:{sec.symbol}"
        ).at(days)

    def price(self, symbol: str, at: datetime) -> float:
        """The price of `symbol` at market time `at`, in dollars and cents."""
        sec = security(symbol)
        if sec is None:
            raise UnknownSymbol(symbol)
        sigma = sec.volatility / math.sqrt(365)
        move = sigma * (self._factor(sec, _days(at)) - self._factor(sec, _days(ORIGIN)))
        effects = self._effects[sec.symbol]
        move += effects.at(at) - effects.at(ORIGIN)
        return max(0.01, round(sec.start_price * math.exp(move), 2))

    def events(self, symbols: list[str], since: datetime, until: datetime) -> list[MarketEvent]:
        """Company events of `symbols` with `since < at <= until`, newest first."""
        found = []
        for symbol in symbols:
            sec = security(symbol)
            if sec is None:
                raise UnknownSymbol(symbol)
            found.extend(events_between(self.seed, sec, since, until, self.event_rate))
        return sorted(found, key=lambda e: e.at, reverse=True)

    def prices(self, at: datetime) -> dict[str, float]:
        """Every symbol's price at `at`."""
        return {sec.symbol: self.price(sec.symbol, at) for sec in UNIVERSE}
