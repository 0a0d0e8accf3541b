"""Market time: the wall clock sped up by a time scale (e.g. 60× for demos).

Every process that builds a `MarketClock` from the same scale and anchor agrees on the
market time, so the gateway and the sandbox need not talk to each other. At the anchor,
market time equals wall time; from there it runs `time_scale` times faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def wall_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class MarketClock:
    """Scaled market time; `wall` and `wall_sleep` are injectable for tests."""

    time_scale: float = 1.0
    anchor: datetime = DEFAULT_ANCHOR
    wall: Callable[[], datetime] = field(default=wall_now, compare=False)
    wall_sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be positive")

    def now(self) -> datetime:
        """The current market time."""
        return self.anchor + (self.wall() - self.anchor) * self.time_scale

    def sleep(self, market_seconds: float) -> None:
        """Sleep for a span of market time."""
        self.wall_sleep(max(0.0, market_seconds) / self.time_scale)
