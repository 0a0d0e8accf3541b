"""Market time: the wall clock sped up by a time scale (e.g. 60× for demos).

Every process that builds a `MarketClock` from the same scale and anchor agrees on the
market time, so the gateway and the sandbox need not talk to each other. At the anchor,
market time equals wall time; from there it runs `time_scale` times faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

DEFAULT_ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def wall_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class MarketClock:
    """Scaled market time; `wall` and `wall_sleep` are injectable for tests."""

    __slots__ = ("anchor", "time_scale", "wall", "wall_sleep")

    def __init__(
        self,
        time_scale: float = 1.0,
        anchor: datetime = DEFAULT_ANCHOR,
        wall: Callable[[], datetime] = wall_now,
        wall_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self.anchor = anchor
        self.wall = wall
        self.wall_sleep = wall_sleep

    def now(self) -> datetime:
        """The current market time."""
        return self.at(self.wall())

    def at(self, wall: datetime) -> datetime:
        """The market time at the `wall` time."""
        return self.anchor + (wall - self.anchor) * self.time_scale

    def sleep(self, market_seconds: float) -> None:
        """Sleep for a span of market time."""
        self.wall_sleep(max(0.0, market_seconds) / self.time_scale)
