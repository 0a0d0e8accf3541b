"""Per-agent request rates at the gateway: one token bucket per agent, sized from the
agent cycle, so no single agent can crowd out the rest of the fleet.

An agent's ordinary cycle (a heartbeat, news and quotes, now and then a bootstrap or an
assessment) fits well inside its rate; a burst above it gets 429 with the seconds to wait.
Refusals are counted per agent for `/metrics`. State is in memory: exactly one daemon
serves a fleet.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

# An agent's gateway calls per cycle, and the burst it may make at once.
CALLS_PER_CYCLE = 10.0
BURST = 30.0


@dataclass
class _Bucket:
    tokens: float
    at: float


class AgentRates:
    """Token buckets per agent: `take(agent_id)` spends one request."""

    def __init__(
        self,
        cycle_seconds: float,
        per_cycle: float = CALLS_PER_CYCLE,
        burst: float = BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_cycle / cycle_seconds  # requests per second
        self.burst = burst
        self.clock = clock
        self.refused: Counter[str] = Counter()
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, agent_id: str) -> float | None:
        """Spend one request of `agent_id`; None if it may go, else seconds to wait."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.setdefault(agent_id, _Bucket(self.burst, now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            self.refused[agent_id] += 1
            return (1 - bucket.tokens) / self.rate
