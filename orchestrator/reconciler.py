"""The reconciler's decision: `plan(desired, observed, now) -> list[Action]`, with no I/O.

Level-triggered (DESIGN §2): every tick compares the store's desired state with what the
runtime lists and proposes the actions that close the gap. It must never act on
"missing" before the first successful list: `observed is None` plans nothing at all.
The effectful side lives in `orchestrator.executor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.phases import WANTS_CONTAINER, Phase
from orchestrator.runtime import ObservedAgent


@dataclass(frozen=True)
class DesiredAgent:
    """What the store says about one agent that is not over yet."""

    agent_id: str
    name: str
    phase: Phase
    container_id: str | None


@dataclass(frozen=True)
class Desired:
    """The whole desired state: agents plus the workload spec they should run with."""

    agents: Sequence[DesiredAgent]
    spec_hash: str


@dataclass(frozen=True)
class Start:
    """Create the agent's workload (adopting one that already has its name)."""

    agent_id: str
    name: str


@dataclass(frozen=True)
class Adopt:
    """Record a workload that already runs for the agent; nothing is restarted."""

    agent_id: str
    container_id: str


@dataclass(frozen=True)
class Replace:
    """Remove the agent's workload and start a new one."""

    agent_id: str
    name: str
    container_id: str
    reason: str


@dataclass(frozen=True)
class Retire:
    """Stop and remove every workload of a retiring agent, then mark it retired."""

    agent_id: str
    container_ids: tuple[str, ...]


@dataclass(frozen=True)
class RemoveOrphan:
    """Remove a workload of this instance that no live agent owns."""

    container_id: str
    name: str
    reason: str


Action = Start | Adopt | Replace | Retire | RemoveOrphan


def action_key(action: Action) -> str:
    """What an action works on: at most one action per key is in flight."""
    if isinstance(action, RemoveOrphan):
        return f"container:{action.container_id}"
    return f"agent:{action.agent_id}"


def _pick(agent: DesiredAgent, workloads: list[ObservedAgent]) -> ObservedAgent:
    """The workload to keep when an agent has several: the recorded one, else a live one."""
    for workload in workloads:
        if workload.container_id == agent.container_id:
            return workload
    return next((w for w in workloads if w.alive), workloads[0])


def plan(desired: Desired, observed: Sequence[ObservedAgent] | None, now: datetime) -> list[Action]:
    """Actions that move `observed` towards `desired`, decided at `now`."""
    del now  # every decision here is immediate; restart back-off will use the clock
    if observed is None:
        return []
    by_agent: dict[str, list[ObservedAgent]] = {}
    for workload in observed:
        by_agent.setdefault(workload.agent_id or "", []).append(workload)

    actions: list[Action] = []
    owners = set()
    for agent in desired.agents:
        workloads = by_agent.get(agent.agent_id, [])
        if agent.phase == Phase.RETIRING:
            owners.add(agent.agent_id)
            actions.append(Retire(agent.agent_id, tuple(w.container_id for w in workloads)))
            continue
        if agent.phase not in WANTS_CONTAINER:
            continue
        owners.add(agent.agent_id)
        if not workloads:
            actions.append(Start(agent.agent_id, agent.name))
            continue
        keep = _pick(agent, workloads)
        actions.extend(
            RemoveOrphan(w.container_id, w.name, f"duplicate of {keep.name}")
            for w in workloads
            if w is not keep
        )
        if not keep.alive:
            reason = (
                f"exited with code {keep.exit_code}" if keep.exit_code is not None else keep.state
            )
            actions.append(Replace(agent.agent_id, agent.name, keep.container_id, reason))
        elif keep.spec_hash != desired.spec_hash:
            actions.append(Replace(agent.agent_id, agent.name, keep.container_id, "spec changed"))
        elif keep.container_id != agent.container_id:
            actions.append(Adopt(agent.agent_id, keep.container_id))

    for agent_id, workloads in by_agent.items():
        if agent_id not in owners:
            actions.extend(
                RemoveOrphan(w.container_id, w.name, "no live agent owns it") for w in workloads
            )
    return actions
