"""The reconciler's memory of the store: each live agent as the plan last saw it.

Reading every live agent's row each tick made the tick grow with the fleet. Like the
informers Kubernetes controllers keep, the reconciler now reads every row only at a
resync (with the engine's full list), and between two plans only for the agents that
may need it:
- those whose row changed through the store (`AgentChanges`), read again by id;
- those whose workload the engine reported on, or whose action finished;
- those whose own moment has come (`next_look`): a back-off or a provisioning retry due,
  a heartbeat missing for too long, failures old enough to forget. Their rows are read
  again too, so a silence is judged on the store's last heartbeat, not the memory's.

The heartbeats written through the store are told apart (`AgentChanges.beats_written`),
each agent's latest only. A beat only ever makes an agent less silent: when an agent's
moment comes and a beat written since puts all its moments after now, its look moves on
with no row read. Between two resyncs a fleet that beats and does nothing else is read
and planned for not at all.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Set
from dataclasses import replace
from datetime import datetime, timedelta

from orchestrator.control.plan import DesiredAgent, Policy

_INSTANT = timedelta(microseconds=1)  # the store's resolution: "longer than" starts here


def next_look(
    agent: DesiredAgent, policy: Policy, now: datetime, heard_at: datetime | None = None
) -> datetime | None:
    """The first moment after `now` at which `plan` may decide otherwise for this agent with
    nothing else changed, or None if there is none. Every comparison with `now` the plan
    makes for an agent is against one of these moments (a test holds the two together).
    `heard_at`: a heartbeat written after the agent's row was read."""
    moments = [agent.next_provision_at, agent.next_restart_at]
    if (alive_at := max(filter(None, (agent.alive_at, heard_at)), default=None)) is not None:
        moments.append(alive_at + policy.heartbeat_timeout + _INSTANT)
    if agent.failures and agent.healthy_since is not None:
        moments.append(agent.healthy_since + policy.restart_reset)
    return min((m for m in moments if m is not None and m > now), default=None)


class AgentMemory:
    """Live agent id → the plan's view of its row, and when each is next due a look."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.agents: dict[str, DesiredAgent] = {}
        self._beats: dict[str, datetime] = {}  # heartbeats written since the row was read
        self._looks: dict[str, tuple[datetime, datetime]] = {}  # next moment, since when
        self._heap: list[tuple[datetime, str]] = []  # the same moments, and those since moved

    def reset(self, agents: Iterable[DesiredAgent]) -> None:
        """Every live agent, as a full read found them."""
        self.agents = {a.agent_id: a for a in agents}
        self._beats, self._looks, self._heap = {}, {}, []

    def update(self, agents: Iterable[DesiredAgent], read: Set[str]) -> None:
        """The rows of the agents `read`, read again: those not among `agents` are over."""
        found = {a.agent_id: a for a in agents}
        for agent_id in read:
            self._beats.pop(agent_id, None)  # the row holds them
            if agent_id in found:
                self.agents[agent_id] = found[agent_id]
            else:
                self.agents.pop(agent_id, None)
                self._looks.pop(agent_id, None)

    def beaten(self, beats: Mapping[str, datetime]) -> None:
        """Heartbeats written since the rows were read (agent id → the latest's time)."""
        self._beats.update(beats)

    def agent(self, agent_id: str) -> DesiredAgent:
        """The agent as the plan should see it: its row, with the latest beat written."""
        agent = self.agents[agent_id]
        beat = self._beats.get(agent_id)
        if beat is None or (agent.alive_at is not None and beat <= agent.alive_at):
            return agent
        return replace(agent, alive_at=beat, heartbeat_at=beat)

    def due(self, now: datetime) -> set[str]:
        """The agents whose moment has come by `now`; a look that a beat written since has
        put after `now` moves on instead."""
        due = set()
        while self._heap and self._heap[0][0] <= now:
            moment, agent_id = heapq.heappop(self._heap)
            look = self._looks.get(agent_id)
            if look is None or look[0] != moment:
                continue  # moved since
            if (beat := self._beats.get(agent_id)) is not None:
                since = look[1]
                later = next_look(self.agents[agent_id], self.policy, since, heard_at=beat)
                if later is not None and later > now:
                    self._looks[agent_id] = (later, since)
                    heapq.heappush(self._heap, (later, agent_id))
                    continue
            del self._looks[agent_id]
            due.add(agent_id)
        return due

    def planned(self, agents: Iterable[DesiredAgent], now: datetime) -> None:
        """The plan has just seen these agents at `now`: note when each is due again."""
        for agent in agents:
            moment = next_look(agent, self.policy, now)
            if moment is None:
                self._looks.pop(agent.agent_id, None)
            elif (look := self._looks.get(agent.agent_id)) is None or look[0] != moment:
                self._looks[agent.agent_id] = (moment, now)
                heapq.heappush(self._heap, (moment, agent.agent_id))
