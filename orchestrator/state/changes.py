"""What a store has changed of its agents, for those who keep agents in memory.

Two readers keep agents in memory and must hear of changes made through the store:
- the gateway remembers an agent by its token and forgets it when that agent's phase or
  token changes (`epoch`, `agent_epoch`): a retirement is told and a revoked token refused
  at once;
- the reconciler keeps each live agent's row as the plan sees it, reads again only the rows
  changed since it last asked (`take`), and reads every row at its periodic resync, which
  bounds how long a change made outside this store goes unseen.

A heartbeat's own columns (its time, cycle and figures) are not changes here: a fleet's
beats would make the reconciler read most rows every tick. It hears of the beats written
apart (`beats_written`, `take_beats`), each agent's latest time only: a beat moves the
moment the reconciler would look at that agent for silence, with no row read
(`control/informer.py`). A beat that moves an agent's lifecycle (its first, which makes
it running and healthy) is a change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime


class AgentChanges:
    """Counts of each agent's phase and token changes, and the agents changed since the
    last `take`."""

    def __init__(self) -> None:
        self.epoch = 0  # phase and token changes of any agent
        self._epochs: dict[str, int] = {}
        self._unseen: set[str] = set()
        self._beats: dict[str, datetime] = {}  # each agent's latest beat since the last take
        self._lock = threading.Lock()

    def agent_epoch(self, agent_id: str) -> int:
        """The count of this agent's phase and token changes made through the store."""
        return self._epochs.get(agent_id, 0)

    def changed(self, agent_ids: Iterable[str], identity: bool = False) -> None:
        """These agents' rows changed (and with `identity`, their phase or token)."""
        with self._lock:
            for agent_id in agent_ids:
                self._unseen.add(agent_id)
                if identity:
                    self.epoch += 1
                    self._epochs[agent_id] = self._epochs.get(agent_id, 0) + 1

    def take(self) -> set[str]:
        """The agents changed since the last call."""
        with self._lock:
            taken, self._unseen = self._unseen, set()
            return taken

    def beats_written(
        self, beats: Iterable[tuple[str, datetime]], lifecycle: Iterable[str]
    ) -> None:
        """A batch of heartbeats (agent id, time) was written; those of the agents in
        `lifecycle` moved their lifecycle, a change. A beat the store left unwritten (its
        agent gone, or its phase moved meanwhile) may be told too: a beat can only put off
        a look for silence, and the phase change has the row read again."""
        with self._lock:
            for agent_id, at in beats:
                if agent_id not in self._beats or at > self._beats[agent_id]:
                    self._beats[agent_id] = at
        self.changed(lifecycle)

    def take_beats(self) -> dict[str, datetime]:
        """Each agent's latest heartbeat written since the last call."""
        with self._lock:
            taken, self._beats = self._beats, {}
            return taken
