"""The simulated market's prices: a deterministic function of `(seed, market time)`.

Each symbol follows a geometric Brownian motion driven by its sector's factor and its
own noise, plus the reactions to its company events (`feeds.events`):
`log P(t) = log P0 + σ·(β·W_sector(t) + √(1-β²)·W_own(t)) + events(t) − (same at the origin)`.
A Brownian path is built from seeded random numbers at two scales. Its value at each
day's start comes from Lévy's midpoint construction: the value at the end of a span of
2**LEVELS days, then the midpoint of each halving, so any day costs LEVELS draws however
far it is from the epoch. Inside a day it follows a Brownian bridge of one-minute steps.
So any process, at any time, computes the same price at the same small cost without
replaying history, and prices at the origin equal the universe's starting prices. No
I/O, no wall clock.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from functools import lru_cache

from feeds.events import EVENT_RATE_PER_DAY, MarketEvent, effect_at, events_between
from feeds.universe import UNIVERSE, Security, security

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)  # where every symbol sits at its start price
MINUTES_PER_DAY = 1440


class UnknownSymbol(KeyError):
    """The symbol is not in the simulated universe."""


LEVELS = 20  # the daily walk spans 2**20 days (about 2,870 years) from EPOCH
SPAN = 2**LEVELS


class _BrownianPath:
    """A standard Brownian motion in days, reproducible from its key."""

    def __init__(self, key: str) -> None:
        self.key = key

    def at(self, days: float) -> float:
        """W(days since EPOCH), at one-minute resolution; times outside the span clamp."""
        whole = min(max(0, math.floor(days * MINUTES_PER_DAY)), SPAN * MINUTES_PER_DAY - 1)
        day, minute = divmod(whole, MINUTES_PER_DAY)
        start, end = _at_day(self.key, day), _at_day(self.key, day + 1)
        return start + (end - start) * minute / MINUTES_PER_DAY + _bridge(self.key, day)[minute]


@lru_cache(maxsize=4096)
def _at_day(key: str, day: int) -> float:
    """W at the start of `day`: halve [0, SPAN] towards it, drawing each midpoint from the
    Brownian bridge between its ends (variance a quarter of the span)."""
    low, high = 0, SPAN
    w_low, w_high = 0.0, math.sqrt(SPAN) * _gauss(key, SPAN, SPAN)
    while high - low > 1 and day not in (low, high):
        middle = (low + high) // 2
        w_middle = (w_low + w_high) / 2 + math.sqrt((high - low) / 4) * _gauss(key, low, high)
        if day < middle:
            high, w_high = middle, w_middle
        else:
            low, w_low = middle, w_middle
    return w_low if day == low else w_high


@lru_cache(maxsize=8192)
def _gauss(key: str, low: int, high: int) -> float:
    """The standard normal draw of the midpoint of [low, high] (of the span's end for
    [SPAN, SPAN])."""
    return random.Random(f"{key}:{low}:{high}").gauss(0.0, 1.0)


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
        self._at_origin: dict[str, float] = {}  # each symbol's factor and events at ORIGIN

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
        move = self._log_move(sec, at) - self._origin(sec)
        return max(0.01, round(sec.start_price * math.exp(move), 2))

    def _log_move(self, sec: Security, at: datetime) -> float:
        sigma = sec.volatility / math.sqrt(365)
        return sigma * self._factor(sec, _days(at)) + effect_at(self.seed, sec, at, self.event_rate)

    def _origin(self, sec: Security) -> float:
        if sec.symbol not in self._at_origin:
            self._at_origin[sec.symbol] = self._log_move(sec, ORIGIN)
        return self._at_origin[sec.symbol]

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
