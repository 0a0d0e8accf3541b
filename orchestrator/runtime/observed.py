"""The engine's containers as last seen, kept by its events: an informer, as Kubernetes
clients keep one, so a reconcile tick does not list every container of a large fleet.

The cache answers only while the event stream is connected (`arm`): a full list seeds
it, and again every `resync_seconds` and after the stream was lost (events may have gone
by unseen; a list that was on its way then is not kept). In between, each event changes one entry:
`create`, `start`, `die`, `pause`, `unpause` and `destroy` carry the container's labels,
so an entry can be made from the event alone. Events that arrive while a list is on its
way are applied again on top of it, in order; each is idempotent, so one the list
already shows changes nothing. The runtime's own create and remove update the cache
before they return, so the next tick sees them even before their events arrive (and a
container that died or went before its create returned is put in as such).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from orchestrator.runtime import LABEL_AGENT_ID, LABEL_SPEC_HASH, ObservedAgent

_STATES = {"create": "created", "start": "running", "unpause": "running", "pause": "paused"}


class ObservedCache:
    """Container ID → ObservedAgent, fed by a full list and the engine's raw events."""

    def __init__(self, resync_seconds: float, clock: Callable[[], float]) -> None:
        self.resync_seconds = resync_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._armed = False  # the event stream is connected
        self._epoch = 0  # counts arm() and lost(): a list from an older epoch is not kept
        self._seen: dict[str, ObservedAgent] | None = None  # None: a full list is due
        self._listed_at = 0.0
        self._seeded = 0  # counts the full lists that seeded the cache
        self._during: list[dict] | None = None  # events since the running list began
        # The last die or destroy of containers the cache did not know (yet): a create
        # that returns after its container already died must not bring it back to life.
        self._early: dict[str, ObservedAgent | None] = {}

    def current(self) -> list[ObservedAgent] | None:
        """What the cache knows, or None when a full list is due."""
        with self._lock:
            if self._seen is None or self._clock() - self._listed_at >= self.resync_seconds:
                return None
            return list(self._seen.values())

    def view(self) -> int | None:
        """Which full list seeded what the cache knows, while events keep it; None when a
        full list is due (then every change since the last one may have gone unreported)."""
        with self._lock:
            if self._seen is None or self._clock() - self._listed_at >= self.resync_seconds:
                return None
            return self._seeded

    def listing(self) -> int:
        """A full list is about to be asked for: keep the events from now on. Returns the
        epoch to hand back to `listed`."""
        with self._lock:
            self._during = [] if self._armed else None
            return self._epoch

    def listed(self, observed: Iterable[ObservedAgent], epoch: int) -> list[ObservedAgent]:
        """The full list that began in `epoch` came back: with the events since it began
        applied on top, it seeds the cache (if the stream stayed connected meanwhile).
        Returns the list so corrected."""
        with self._lock:
            seen = {o.container_id: o for o in observed}
            for raw in self._during or []:
                _apply(seen, raw, {})
            self._during = None
            if self._armed and epoch == self._epoch:
                self._seen, self._listed_at, self._early = seen, self._clock(), {}
                self._seeded += 1
            return list(seen.values())

    def arm(self) -> None:
        """The event stream is (re)connected: from the next full list on, events keep the
        cache."""
        with self._lock:
            self._armed, self._seen, self._during = True, None, None
            self._epoch += 1

    def lost(self) -> None:
        """The event stream broke: only a full list can be trusted, and only once the
        stream is back."""
        with self._lock:
            self._armed, self._seen, self._during = False, None, None
            self._epoch += 1

    def unlisted(self) -> None:
        """A full list failed: the next list is a full one too (the stream, if it is still
        connected, keeps the cache from then on)."""
        with self._lock:
            self._seen, self._during = None, None

    def event(self, raw: dict) -> None:
        """Apply one decoded engine event."""
        with self._lock:
            if self._during is not None:
                self._during.append(raw)
            if self._seen is not None:
                _apply(self._seen, raw, self._early)

    def put(self, observed: ObservedAgent) -> None:
        """The runtime made or started this container itself."""
        with self._lock:
            if self._seen is None:
                return
            if observed.container_id not in self._early:
                self._seen[observed.container_id] = observed
            elif (ended := self._early.pop(observed.container_id)) is not None:
                self._seen[observed.container_id] = replace(
                    observed, state=ended.state, exit_code=ended.exit_code
                )

    def started(self, container_id: str) -> None:
        """The runtime started this known container again itself."""
        with self._lock:
            if self._seen is not None and (known := self._seen.get(container_id)) is not None:
                self._seen[container_id] = replace(known, state="running", exit_code=None)

    def drop(self, container_id: str) -> None:
        """The runtime removed this container itself."""
        with self._lock:
            if self._seen is not None:
                self._seen.pop(container_id, None)


def _apply(
    seen: dict[str, ObservedAgent], raw: dict, early: dict[str, ObservedAgent | None]
) -> None:
    """One event onto `seen`; events of other kinds change nothing. The end of a container
    not in `seen` goes into `early` (None: destroyed)."""
    action = raw.get("Action") or raw.get("status") or ""
    actor = raw.get("Actor") or {}
    container_id = raw.get("id") or actor.get("ID") or ""
    attributes = actor.get("Attributes") or {}
    if not container_id:
        return
    if action == "destroy":
        if seen.pop(container_id, None) is None:
            early[container_id] = None
        return
    known = seen.get(container_id)
    if action == "die":
        code = attributes.get("exitCode")
        exit_code = int(code) if code is not None and str(code).lstrip("-").isdigit() else None
        if known is not None:
            seen[container_id] = replace(known, state="exited", exit_code=exit_code)
        elif container_id not in early:
            early[container_id] = ObservedAgent(container_id, None, "?", "exited", exit_code, "")
        return
    state = _STATES.get(action)
    if state is None:
        return
    if known is not None:
        seen[container_id] = replace(known, state=state, exit_code=None)
        return
    at = raw.get("timeNano")
    seen[container_id] = ObservedAgent(
        container_id=container_id,
        agent_id=attributes.get(LABEL_AGENT_ID),
        name=attributes.get("name", "?"),
        state=state,
        exit_code=None,
        spec_hash=attributes.get(LABEL_SPEC_HASH, ""),
        started_at=datetime.fromtimestamp(at / 1e9, UTC) if at else None,
    )
