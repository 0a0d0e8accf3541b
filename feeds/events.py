"""Company events of the simulated market: what happens, when, and how the price reacts.

Events are drawn per (seed, symbol, day) from their own random stream, so any process
finds the same events for any day without replaying history. Each event has a true
direction, a headline written like a wire story, and a price reaction: a jump at the
event, then over one to five days either more of the same (momentum) or a partial
reversal; the new level then fades away over `FADE_DAYS` (the market forgets), so the
price at any moment depends only on the events of the weeks before it, and costs the
same to compute whatever the date. No I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from feeds.universe import Security

EVENT_RATE_PER_DAY = 0.05  # about two events a day across the universe
MAX_DRIFT_DAYS = 5.0
FADE_DAYS = 60.0
_MOVING_DAYS = math.ceil(MAX_DRIFT_DAYS + FADE_DAYS) + 1  # how long an event moves a price

# (weight, typical size of the jump as a log-return)
_TYPES: dict[str, tuple[float, float]] = {
    "earnings": (3.0, 0.05),
    "guidance": (1.5, 0.04),
    "rating": (3.0, 0.025),
    "product": (1.5, 0.015),
    "lawsuit": (1.0, 0.03),
    "m&a": (0.5, 0.10),
    "fda": (1.5, 0.12),  # healthcare only
    "recall": (0.5, 0.04),
}
_ALWAYS_NEGATIVE = {"lawsuit", "recall"}

_HEADLINES: dict[tuple[str, bool], tuple[str, ...]] = {
    ("earnings", True): (
        "{name} beats quarterly earnings estimates as revenue jumps",
        "{name} tops profit expectations, shares rise in late trading",
    ),
    ("earnings", False): (
        "{name} misses earnings estimates as sales slump",
        "{name} falls short of revenue expectations, shares slide",
    ),
    ("guidance", True): (
        "{name} raises full-year guidance on strong demand",
        "{name} boosts outlook after record quarter",
    ),
    ("guidance", False): (
        "{name} cuts full-year guidance, citing weak demand",
        "{name} lowers outlook as costs climb",
    ),
    ("rating", True): (
        "Analysts upgrade {name} to Buy on improving margins",
        "{name} upgraded to Outperform; price target raised",
    ),
    ("rating", False): (
        "Analysts downgrade {name} to Sell on slowing growth",
        "{name} downgraded to Underperform; price target cut",
    ),
    ("product", True): (
        "{name} unveils new flagship product to strong early reviews",
        "{name} launches new platform, analysts see big gains",
    ),
    ("product", False): (
        "{name} launch disappoints as early reviews criticise delays",
        "{name} product rollout stumbles amid weak demand",
    ),
    ("lawsuit", False): (
        "{name} sued in class action lawsuit over disclosures",
        "Regulators open probe into {name} business practices",
    ),
    ("m&a", True): (
        "{name} soars on agreement to be acquired at a premium",
        "{name} jumps after buyout offer from larger rival",
    ),
    ("m&a", False): (
        "{name} plunges as takeover talks collapse",
        "{name} drops after merger deal is called off",
    ),
    ("fda", True): (
        "FDA approves {name} drug, clearing path to launch",
        "{name} wins FDA approval for lead therapy",
    ),
    ("fda", False): (
        "FDA rejects {name} application, shares plunge",
        "{name} receives FDA complete response letter, rejection hits shares",
    ),
    ("recall", False): (
        "{name} recalls products over safety defect",
        "{name} announces recall after regulator warning",
    ),
}


@dataclass(frozen=True)
class MarketEvent:
    """One company event and the price reaction it causes."""

    id: str
    symbol: str
    at: datetime
    event_type: str
    positive: bool
    jump: float  # log-return at the event
    follow: float  # further log-return over `drift_days` (same sign: momentum)
    drift_days: float
    headline: str

    def impact(self, at: datetime) -> float:
        """The event's contribution to the log-price at `at`."""
        days = (at - self.at).total_seconds() / 86400
        if days < 0:
            return 0.0
        if days <= self.drift_days:
            return self.jump + self.follow * days / self.drift_days
        return (self.jump + self.follow) * max(0.0, 1 - (days - self.drift_days) / FADE_DAYS)


def _draw(seed: int, sec: Security, day: datetime, rate: float) -> MarketEvent | None:
    rng = random.Random(f"{seed}:events:{sec.symbol}:{day:%Y-%m-%d}")
    if rng.random() >= rate:
        return None
    kinds = [k for k in _TYPES if k != "fda" or sec.sector == "healthcare"]
    kind = rng.choices(kinds, weights=[_TYPES[k][0] for k in kinds])[0]
    positive = kind not in _ALWAYS_NEGATIVE and rng.random() < (0.55 if kind != "m&a" else 0.7)
    size = abs(rng.gauss(_TYPES[kind][1], _TYPES[kind][1] / 3))
    jump = size if positive else -size
    follow = jump * (0.5 if rng.random() < 0.6 else -0.4)
    at = day + timedelta(minutes=rng.randrange(24 * 60))
    template = rng.choice(_HEADLINES[(kind, positive)])
    return MarketEvent(
        id=f"sim-{seed}-{sec.symbol}-{day:%Y%m%d}",
        symbol=sec.symbol,
        at=at,
        event_type=kind,
        positive=positive,
        jump=jump,
        follow=follow,
        drift_days=rng.uniform(1, MAX_DRIFT_DAYS),
        headline=template.format(name=sec.name, symbol=sec.symbol),
    )


@lru_cache(maxsize=16384)
def event_on(
    seed: int, sec: Security, day: datetime, rate: float = EVENT_RATE_PER_DAY
) -> MarketEvent | None:
    """The event of `sec` on calendar day `day` (a midnight UTC datetime), if any; `rate`
    is the chance of one on any day."""
    return _draw(seed, sec, day, rate)


def events_between(
    seed: int, sec: Security, start: datetime, end: datetime, rate: float = EVENT_RATE_PER_DAY
) -> list[MarketEvent]:
    """Events of `sec` with `start < at <= end`, oldest first."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    while day <= end:
        event = event_on(seed, sec, day, rate)
        if event is not None and start < event.at <= end:
            found.append(event)
        day += timedelta(days=1)
    return found


def effect_at(
    seed: int, sec: Security, moment: datetime, rate: float = EVENT_RATE_PER_DAY
) -> float:
    """The summed effect on `sec`'s log-price at `moment` of the events still moving it."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return sum(e.impact(moment) for e in _moving(seed, sec, day, rate) if e.at <= moment)


@lru_cache(maxsize=1024)
def _moving(seed: int, sec: Security, day: datetime, rate: float) -> tuple[MarketEvent, ...]:
    """The events that can move `sec`'s price on `day`: that day's, and those of the days
    before it that have not faded yet."""
    since = day - timedelta(days=_MOVING_DAYS)
    return tuple(events_between(seed, sec, since, day + timedelta(days=1), rate))
