"""The reconciler's decision: `plan(desired, observed, now) -> list[Action]`, with no I/O.

Level-triggered (DESIGN §2): every tick compares the store's desired state with what the
runtime lists and proposes the actions that close the gap. It must never act on
"missing" before the first successful list: `observed is None` plans nothing at all.
The effectful side lives in `orchestrator.executor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.phases import WANTS_CONTAINER, Phase
from orchestrator.runtime import ObservedAgent


@dataclass(frozen=True)
class DesiredAgent:
    """What the store says about one agent that is not over yet."""

    agent_id: str
    name: str
    phase: Phase
    container_id: str | None
    has_account: bool = False
    next_provision_at: datetime | None = None
    failures: int = 0
    next_restart_at: datetime | None = None
    # The latest sign of life: heartbeat, workload start or daemon start, whichever is last.
    alive_at: datetime | None = None
    healthy_since: datetime | None = None


@dataclass(frozen=True)
class Desired:
    """The whole desired state: agents, their workload spec, and whether a platform is set."""

    agents: Sequence[DesiredAgent]
    spec_hash: str
    platform: bool = False
    heartbeat_timeout: timedelta = timedelta(seconds=30)
    restart_reset: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class Provision:
    """Create the agent's platform account (idempotent by agent id)."""

    agent_id: str
    name: str


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
    """Remove the agent's healthy workload and start a new one (its spec changed)."""

    agent_id: str
    name: str
    container_id: str
    reason: str


@dataclass(frozen=True)
class Restart:
    """The agent's workload failed (died, vanished or went silent): count the failure,
    remove what is left of it and start again now or after the back-off."""

    agent_id: str
    name: str
    container_id: str | None
    reason: str
    unhealthy: bool = False


@dataclass(frozen=True)
class Recover:
    """The agent stayed healthy long enough: forget its failures (and end a crash loop)."""

    agent_id: str


@dataclass(frozen=True)
class Retire:
    """Stop and remove every workload of a retiring agent, disable its account, mark it retired."""

    agent_id: str
    container_ids: tuple[str, ...]
    disable_account: bool = False


@dataclass(frozen=True)
class RemoveOrphan:
    """Remove a workload of this instance that no live agent owns."""

    container_id: str
    name: str
    reason: str


Action = Provision | Start | Adopt | Replace | Restart | Recover | Retire | RemoveOrphan

BACKOFF_START = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=5)


def backoff(failures: int) -> timedelta:
    """Delay before the next try after `failures` consecutive failures: 1 s doubling to 5 min."""
    if failures <= 0:
        return timedelta(0)
    return min(BACKOFF_CAP, BACKOFF_START * 2 ** min(failures - 1, 20))


def restart_delay(failures: int) -> timedelta:
    """Delay before restarting after the `failures`-th consecutive failure: the first
    restart is immediate, then 1 s doubling to the 5 min cap (DESIGN §3)."""
    return backoff(failures - 1)


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


def _plan_agent(
    agent: DesiredAgent, workloads: list[ObservedAgent], desired: Desired, now: datetime
) -> list[Action]:
    """What one live agent needs, given the workloads that carry its id."""
    if agent.phase == Phase.RETIRING:
        containers = tuple(w.container_id for w in workloads)
        return [Retire(agent.agent_id, containers, desired.platform and agent.has_account)]
    needs_account = desired.platform and not agent.has_account
    if needs_account and agent.phase in (Phase.PENDING, Phase.PROVISIONING):
        due = agent.next_provision_at is None or agent.next_provision_at <= now
        return [Provision(agent.agent_id, agent.name)] if due else []
    if agent.phase not in WANTS_CONTAINER:
        return []
    if not workloads:
        return _plan_missing(agent, now)
    keep = _pick(agent, workloads)
    actions: list[Action] = [
        RemoveOrphan(w.container_id, w.name, f"duplicate of {keep.name}")
        for w in workloads
        if w is not keep
    ]
    silent = now - agent.alive_at if agent.alive_at else timedelta(0)
    if not keep.alive:
        reason = f"exited with code {keep.exit_code}" if keep.exit_code is not None else keep.state
        actions.append(Restart(agent.agent_id, agent.name, keep.container_id, reason))
    elif keep.spec_hash != desired.spec_hash:
        actions.append(Replace(agent.agent_id, agent.name, keep.container_id, "spec changed"))
    elif keep.state == "created":
        # Created but never started (a crash between the two): starting adopts it.
        actions.append(Start(agent.agent_id, agent.name))
    elif silent > desired.heartbeat_timeout:
        reason = f"no heartbeat for {silent.total_seconds():.0f}s"
        actions.append(Restart(agent.agent_id, agent.name, keep.container_id, reason, True))
    elif keep.container_id != agent.container_id:
        actions.append(Adopt(agent.agent_id, keep.container_id))
    elif (
        agent.failures
        and agent.healthy_since is not None
        and now - agent.healthy_since >= desired.restart_reset
    ):
        actions.append(Recover(agent.agent_id))
    return actions


def _plan_missing(agent: DesiredAgent, now: datetime) -> list[Action]:
    """An agent without any workload: start it, wait out its back-off, or count the loss."""
    if agent.container_id is None and agent.phase in (Phase.BACKOFF, Phase.CRASHLOOP):
        due = agent.next_restart_at is None or agent.next_restart_at <= now
        return [Start(agent.agent_id, agent.name)] if due else []
    if agent.container_id is None:
        return [Start(agent.agent_id, agent.name)]
    return [Restart(agent.agent_id, agent.name, None, "its workload disappeared")]


def plan(desired: Desired, observed: Sequence[ObservedAgent] | None, now: datetime) -> list[Action]:
    """Actions that move `observed` towards `desired`, decided at `now`."""
    if observed is None:
        return []
    by_agent: dict[str, list[ObservedAgent]] = {}
    for workload in observed:
        by_agent.setdefault(workload.agent_id or "", []).append(workload)

    actions: list[Action] = []
    for agent in desired.agents:
        actions.extend(_plan_agent(agent, by_agent.get(agent.agent_id, []), desired, now))
    owners = {agent.agent_id for agent in desired.agents}
    for agent_id, workloads in by_agent.items():
        if agent_id not in owners:
            actions.extend(
                RemoveOrphan(w.container_id, w.name, "no live agent owns it") for w in workloads
            )
    return actions
