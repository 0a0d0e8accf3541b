"""Company events of the simulated market: what happens, when, and how the price reacts.

Events are drawn per (seed, symbol, day) from their own random stream, so any process
finds the same events for any day without replaying history. Each event has a true
direction, a headline written like a wire story, and a price reaction: a jump at the
event, then over one to five days either more of the same (momentum) or a partial
reversal, after which the new level stays (news is priced in). Events begin at
`NEWS_EPOCH`. No I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from feeds.universe import Security

NEWS_EPOCH = datetime(2025, 12, 1, tzinfo=UTC)
EVENT_RATE_PER_DAY = 0.05  # about two events a day across the universe
MAX_DRIFT_DAYS = 5.0

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
        return self.jump + self.follow * min(days / self.drift_days, 1.0)

    @property
    def settled(self) -> float:
        """The lasting effect once the drift is over."""
        return self.jump + self.follow


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


@lru_cache(maxsize=4096)
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


class EventEffects:
    """Summed log-price effect of one symbol's events, with settled days cached."""

    def __init__(self, seed: int, sec: Security, rate: float = EVENT_RATE_PER_DAY) -> None:
        self.seed = seed
        self.sec = sec
        self.rate = rate
        self._settled = [0.0]  # summed settled effect of events before day i since NEWS_EPOCH

    def _settled_before(self, day: int) -> float:
        while len(self._settled) <= day:
            i = len(self._settled) - 1
            event = event_on(self.seed, self.sec, NEWS_EPOCH + timedelta(days=i), self.rate)
            self._settled.append(self._settled[-1] + (event.settled if event else 0.0))
        return self._settled[day]

    def at(self, moment: datetime) -> float:
        """The effect at `moment` of every event before it."""
        if moment <= NEWS_EPOCH:
            return 0.0
        today = (moment - NEWS_EPOCH).days
        # Events older than the longest drift are settled; newer ones are still moving.
        settled_days = max(0, today - math.ceil(MAX_DRIFT_DAYS) - 1)
        recent_start = NEWS_EPOCH + timedelta(days=settled_days) - timedelta(microseconds=1)
        recent = events_between(self.seed, self.sec, recent_start, moment, self.rate)
        return self._settled_before(settled_days) + sum(e.impact(moment) for e in recent)
