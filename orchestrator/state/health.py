"""How the store is doing, as the daemon last found it, part by part.

Each part that uses the store says how it went: `failed(part, exc)` or `worked(part)`
(the gateway's heartbeats, the reconciler's rounds, operator requests). `/healthz` shows
the failing parts with their reasons; the reconciler does not hold against an agent the
silence of a store that could not take its heartbeats; and an episode is logged once when
it starts, at most once a minute while it lasts, and once when it ends, never once per
request. Thread-safe: parts report from worker threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.state.errors import failure_reason

log = logging.getLogger("fleet.store")
REMIND_EVERY = timedelta(minutes=1)


@dataclass
class _Episode:
    since: datetime
    reason: str
    failures: int = 1
    reminded_at: datetime | None = None


class StoreHealth:
    """The store's failures, by the part of the daemon that met them."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.last_failure_at: datetime | None = None
        self._episodes: dict[str, _Episode] = {}
        self._lock = threading.Lock()

    def failed(self, part: str, exc: BaseException) -> None:
        """`part` could not use the store."""
        now, reason = self.now(), failure_reason(exc)
        with self._lock:
            self.last_failure_at = now
            episode = self._episodes.get(part)
            if episode is None:
                self._episodes[part] = _Episode(now, reason)
                log.error("store failing for %s: %s", part, reason)
                return
            episode.failures += 1
            episode.reason = reason
            if now - (episode.reminded_at or episode.since) >= REMIND_EVERY:
                episode.reminded_at = now
                log.error(
                    "store still failing for %s after %.0fs (%s failures): %s",
                    part,
                    (now - episode.since).total_seconds(),
                    episode.failures,
                    reason,
                )

    def worked(self, part: str) -> None:
        """`part` used the store again."""
        with self._lock:
            episode = self._episodes.pop(part, None)
        if episode is not None:
            seconds = (self.now() - episode.since).total_seconds()
            log.warning("store works again for %s after %.0fs of failures", part, seconds)

    def problems(self) -> list[str]:
        """What is failing now, one line each."""
        now = self.now()
        with self._lock:
            return [
                f"store failing for {part} for {(now - e.since).total_seconds():.0f}s: {e.reason}"
                for part, e in sorted(self._episodes.items())
            ]
