"""Operator commands: spawn, scale, retire, pause and resume, in one place.

The operator API, the web dashboard and the scheduler all act through `Commands`, so
each change is validated, recorded in the store and followed by a wake of the reconciler
the same way, whichever surface asked. A command only changes desired state; the
reconciler does the rest. Every command is idempotent: spawn under a key already used
replays it, scaling to the current size changes nothing, retiring a retired agent is a
no-op.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator import keys
from orchestrator.operations.sampling import Sampling
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent


class NoPlatform(Exception):
    """The command needs a trading platform and none is configured."""


@dataclass(frozen=True)
class Scaled:
    """What scaling did: the agents it spawned and those it is retiring."""

    spawned: list[Agent]
    retiring: list[Agent]


class Commands:
    """What operators may ask of the fleet."""

    def __init__(
        self,
        store: Store,
        instance_key: bytes,
        wake: Callable[[], None],
        now: Callable[[], datetime],
        *,
        flatten_deadline: timedelta | None,
    ) -> None:
        """`flatten_deadline` is how long a retiring agent may sell, or None when there is
        no platform to sell on."""
        self.store = store
        self._key = instance_key
        self.wake = wake
        self.now = now
        self.flatten_deadline = flatten_deadline
        # Serialises count-then-act (scale) within this daemon.
        self._scale_lock = threading.Lock()

    def _first_token_hash(self, agent_id: str) -> str:
        """Hash of a new agent's generation-0 gateway token."""
        return keys.token_hash(keys.agent_token(self._key, agent_id, 0))

    def spawn(self, count: int, key: str, sampling: Sampling) -> tuple[list[Agent], bool]:
        """Create `count` agents for spawn `key`, or replay that spawn; returns the agents
        and whether they are new."""
        personalities = sampling.draw(count, key)
        agents, created = self.store.spawn(key, personalities, self._first_token_hash, self.now())
        if created:
            self.wake()
        return agents, created

    def scale(self, size: int, sampling: Sampling, newest_first: bool = True) -> Scaled:
        """Make the number of live agents `size`: spawn the missing ones or retire the
        surplus, newest first unless told otherwise; at the size already, nothing."""
        with self._scale_lock:
            live = self.store.live()
            if size > len(live):
                key = f"scale-{uuid.uuid4().hex}"
                spawned, _ = self.spawn(size - len(live), key, sampling)
                return Scaled(spawned, [])
            excess = len(live) - size
            surplus = live[::-1][:excess] if newest_first else live[:excess]
            why = f"the fleet was scaled to {size}"
            retiring = [self._retire(agent.id, None, why) for agent in surplus]
        if retiring:
            self.wake()
        return Scaled([], retiring)

    def retire(
        self, ref: str, flatten: bool = False, why: str = "requested by the operator"
    ) -> Agent:
        """Retire the agent named by `ref`, selling its positions first with `flatten`."""
        agent = self.store.resolve(ref)
        deadline = None
        if flatten:
            if self.flatten_deadline is None:
                raise NoPlatform("flatten needs a platform: none is configured")
            deadline = self.now() + self.flatten_deadline
        retiring = self._retire(agent.id, deadline, why)
        self.wake()
        return retiring

    def _retire(self, agent_id: str, deadline: datetime | None, why: str) -> Agent:
        return self.store.request_retire(agent_id, self.now(), deadline, why)

    def pause(self, paused: bool) -> bool:
        """Set the kill switch; returns whether it changed."""
        return self.store.set_paused(paused, self.now())
