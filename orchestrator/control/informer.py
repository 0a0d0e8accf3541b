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
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Set
from datetime import datetime, timedelta

from orchestrator.control.plan import DesiredAgent, Policy

_INSTANT = timedelta(microseconds=1)  # the store's resolution: "longer than" starts here


def next_look(agent: DesiredAgent, policy: Policy, now: datetime) -> datetime | None:
    """The first moment after `now` at which `plan` may decide otherwise for this agent with
    nothing else changed, or None if there is none. Every comparison with `now` the plan
    makes for an agent is against one of these moments (a test holds the two together)."""
    moments = [agent.next_provision_at, agent.next_restart_at]
    if agent.alive_at is not None:
        moments.append(agent.alive_at + policy.heartbeat_timeout + _INSTANT)
    if agent.failures and agent.healthy_since is not None:
        moments.append(agent.healthy_since + policy.restart_reset)
    return min((m for m in moments if m is not None and m > now), default=None)


class AgentMemory:
    """Live agent id → the plan's view of its row, and when each is next due a look."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.agents: dict[str, DesiredAgent] = {}
        self._looks: dict[str, datetime] = {}  # each agent's next moment
        self._heap: list[tuple[datetime, str]] = []  # the same, and moments since moved

    def reset(self, agents: Iterable[DesiredAgent]) -> None:
        """Every live agent, as a full read found them."""
        self.agents = {a.agent_id: a for a in agents}
        self._looks, self._heap = {}, []

    def update(self, agents: Iterable[DesiredAgent], read: Set[str]) -> None:
        """The rows of the agents `read`, read again: those not among `agents` are over."""
        found = {a.agent_id: a for a in agents}
        for agent_id in read:
            if agent_id in found:
                self.agents[agent_id] = found[agent_id]
            else:
                self.agents.pop(agent_id, None)
                self._looks.pop(agent_id, None)

    def due(self, now: datetime) -> set[str]:
        """The agents whose moment has come by `now`."""
        due = set()
        while self._heap and self._heap[0][0] <= now:
            moment, agent_id = heapq.heappop(self._heap)
            if self._looks.get(agent_id) == moment:
                del self._looks[agent_id]
                due.add(agent_id)
        return due

    def planned(self, agents: Iterable[DesiredAgent], now: datetime) -> None:
        """The plan has just seen these agents at `now`: note when each is due again."""
        for agent in agents:
            moment = next_look(agent, self.policy, now)
            if moment is None:
                self._looks.pop(agent.agent_id, None)
            elif self._looks.get(agent.agent_id) != moment:
                self._looks[agent.agent_id] = moment
                heapq.heappush(self._heap, (moment, agent.agent_id))
