"""Every lifecycle decision: `plan(desired, observed, now) -> list[Action]`, with no I/O.

Level-triggered (DESIGN §2): every tick compares the store's desired state with what the
runtime lists and proposes the actions that close the gap. The plan decides everything
about an agent's life: whether to provision, start, adopt, replace, restart or retire it;
how long to back off; when a crash loop begins and ends; when provisioning is retried;
and which alert each of those raises. An action carries its decision whole, including
what its failure will lead to, so the executor (`control/executor.py`) only carries it
out and records it.

On a runtime that restarts workloads itself (Swarm, `Desired.restarts_itself`) it never
restarts one: it counts the failures the runtime reports and still spots crash loops.
Which image each agent should run comes from the rollout in force (`control/rollout.py`),
whose own steps are planned here too. It never acts on "missing" before the first
successful list: `observed is None` plans nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from orchestrator.control.rollout import (
    BeginRollout,
    Rollout,
    RolloutAgent,
    RolloutPolicy,
    StepRollout,
    Target,
    decide,
)
from orchestrator.lifecycle import WANTS_CONTAINER, AlertKind, EventKind, Phase
from orchestrator.runtime import ObservedAgent

BACKOFF_START = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=5)
UNPLACED = "not placed: "  # begins the reason of an agent its runtime cannot place


@dataclass(frozen=True)
class Policy:
    """The lifecycle's knobs (from settings)."""

    heartbeat_timeout: timedelta
    restart_reset: timedelta
    crashloop_threshold: int


@dataclass(frozen=True)
class DesiredAgent:
    """What the store says about one agent that is not over yet."""

    agent_id: str
    name: str
    phase: Phase
    container_id: str | None
    has_account: bool = False
    provision_attempts: int = 0
    next_provision_at: datetime | None = None
    failures: int = 0
    next_restart_at: datetime | None = None
    # The latest sign of life: heartbeat, workload start or daemon start, whichever is last.
    alive_at: datetime | None = None
    heartbeat_at: datetime | None = None
    healthy_since: datetime | None = None
    node: str | None = None
    failure_seen_at: datetime | None = None  # the last counted failure its runtime restarted
    failed_at: datetime | None = None  # its last failure of any kind
    failed_spec: str | None = None  # what its workload ran when it last failed
    reason: str | None = None  # why it is not running well, as last recorded

    def due(self, now: datetime) -> bool:
        """Whether its back-off, if it has one, is over."""
        return self.next_restart_at is None or self.next_restart_at <= now


@dataclass(frozen=True)
class Desired:
    """The whole desired state: agents, the workload spec of the agents' image as its tag
    names it now, whether a platform is set, the policy that shapes restarts, and the
    rollout that decides which agents run which image (none: all run the tag's)."""

    agents: Sequence[DesiredAgent]
    spec_hash: str
    policy: Policy
    platform: bool = False
    restarts_itself: bool = False  # the runtime restarts failed workloads (Swarm), not us
    restarts_in_place: bool = False  # the runtime can start an exited workload again (Docker)
    image: str = ""
    rollout: Rollout | None = None
    rollout_policy: RolloutPolicy | None = None  # None: no rollouts (every agent at once)

    def target(self, agent_id: str) -> Target:
        """The image and spec the agent's workload should run."""
        if self.rollout is None:
            return Target(self.image, self.spec_hash)
        return self.rollout.target(agent_id)


@dataclass(frozen=True)
class AfterFailure:
    """What the agent's next failure leads to, decided before it happens."""

    failures: int  # consecutive failures, this one included
    phase: Phase  # STARTING (restart at once), BACKOFF, or CRASHLOOP
    delay: timedelta  # until the next start
    alert: AlertKind | None = None  # CRASHLOOP when this failure begins a crash loop


@dataclass(frozen=True)
class Provision:
    """Create the agent's platform account (idempotent by agent id); if the platform is
    unavailable, try again after `retry_after`."""

    agent_id: str
    name: str
    retry_after: timedelta


@dataclass(frozen=True)
class Start:
    """Create the agent's workload (adopting one that already has its name) and enter
    `phase`; a start that fails is a failure like a crash."""

    agent_id: str
    name: str
    phase: Phase
    on_failure: AfterFailure
    image: str = ""  # the image ID to run ("": the tag's, as the runtime resolves it)


@dataclass(frozen=True)
class Adopt:
    """Record a workload that already runs for the agent; nothing is restarted."""

    agent_id: str
    container_id: str
    phase: Phase


@dataclass(frozen=True)
class Replace:
    """Remove the agent's healthy workload and start a new one (its spec changed)."""

    container_id: str
    reason: str
    start: Start

    @property
    def agent_id(self) -> str:
        """The agent whose workload is replaced."""
        return self.start.agent_id


@dataclass(frozen=True)
class Restart:
    """The agent's workload failed (`cause`: it exited, vanished or went silent): record
    the failure as `then` says, remove what is left of it (`in_place`: keep it, to start it
    again as it is), and `start` at once if the back-off allows (else a later tick does)."""

    agent_id: str
    name: str
    container_id: str | None
    cause: EventKind
    reason: str
    then: AfterFailure
    start: Start | None
    spec_hash: str | None = None  # what the failed workload ran (None: it is gone)
    in_place: bool = False


@dataclass(frozen=True)
class CountFailures:
    """The runtime restarted the agent's workload by itself after `count` failures we had
    not counted, the last at `last_at`: record them as `then` says. Nothing is restarted."""

    agent_id: str
    container_id: str
    count: int
    last_at: datetime
    then: AfterFailure
    spec_hash: str = ""  # what the failed tasks ran


@dataclass(frozen=True)
class Place:
    """Note where the agent's workload now runs (`node`), or that its runtime cannot place
    it (`unplaced`: the agent's reason until it is placed, with the runtime's words)."""

    agent_id: str
    node: str | None
    unplaced: str | None = None


@dataclass(frozen=True)
class Recover:
    """The agent stayed healthy long enough: forget its failures; a crash loop ends
    (and says so) here."""

    agent_id: str
    ends_crashloop: bool


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


_Lifecycle = Provision | Start | Adopt | Replace | Restart | CountFailures | Place | Recover
Action = _Lifecycle | Retire | RemoveOrphan | BeginRollout | StepRollout


def backoff(failures: int) -> timedelta:
    """Delay before the next try after `failures` consecutive failures: 1 s doubling to 5 min."""
    if failures <= 0:
        return timedelta(0)
    return min(BACKOFF_CAP, BACKOFF_START * 2 ** min(failures - 1, 20))


def restart_delay(failures: int) -> timedelta:
    """Delay before restarting after the `failures`-th consecutive failure: the first
    restart is immediate, then 1 s doubling to the 5 min cap (DESIGN §3)."""
    return backoff(failures - 1)


def after_failure(failures: int, phase: Phase, policy: Policy) -> AfterFailure:
    """The consequence of one more failure for an agent with `failures` so far, in `phase`:
    how long to wait, whether it is now crash-looping, and whether to alert (once per loop)."""
    count = failures + 1
    delay = restart_delay(count)
    looping = count >= policy.crashloop_threshold
    if looping:
        alert = None if phase == Phase.CRASHLOOP else AlertKind.CRASHLOOP
        return AfterFailure(count, Phase.CRASHLOOP, delay, alert)
    return AfterFailure(count, Phase.BACKOFF if delay else Phase.STARTING, delay)


def action_key(action: Action) -> str:
    """What an action works on: at most one action per key is in flight."""
    if isinstance(action, RemoveOrphan):
        return f"container:{action.container_id}"
    if isinstance(action, BeginRollout | StepRollout):
        return "rollout"
    return f"agent:{action.agent_id}"


def _start(agent: DesiredAgent, desired: Desired) -> Start:
    # A crash loop lasts until the agent stays healthy (see Recover), whatever starts it.
    phase = Phase.CRASHLOOP if agent.phase == Phase.CRASHLOOP else Phase.STARTING
    then = after_failure(agent.failures, agent.phase, desired.policy)
    return Start(agent.agent_id, agent.name, phase, then, desired.target(agent.agent_id).image)


def _restart(
    agent: DesiredAgent,
    workload: ObservedAgent | None,
    cause: EventKind,
    reason: str,
    desired: Desired,
) -> Restart:
    then = after_failure(agent.failures, agent.phase, desired.policy)
    failed = replace(agent, failures=then.failures, phase=then.phase)
    start = None if then.delay else _start(failed, desired)
    restart = Restart(agent.agent_id, agent.name, None, cause, reason, then, start)
    if workload is None:
        return restart
    in_place = (
        desired.restarts_in_place
        and start is not None
        and cause == EventKind.EXITED
        and workload.spec_hash == desired.target(agent.agent_id).spec_hash
    )
    container, spec = workload.container_id, workload.spec_hash
    return replace(restart, container_id=container, spec_hash=spec, in_place=in_place)


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
    policy = desired.policy
    if agent.phase == Phase.RETIRING:
        containers = tuple(w.container_id for w in workloads)
        return [Retire(agent.agent_id, containers, desired.platform and agent.has_account)]
    needs_account = desired.platform and not agent.has_account
    if needs_account and agent.phase in (Phase.PENDING, Phase.PROVISIONING):
        due = agent.next_provision_at is None or agent.next_provision_at <= now
        retry_after = backoff(agent.provision_attempts + 1)
        return [Provision(agent.agent_id, agent.name, retry_after)] if due else []
    if agent.phase not in WANTS_CONTAINER:
        return []
    if not workloads:
        return _plan_missing(agent, desired, now)
    keep = _pick(agent, workloads)
    actions: list[Action] = [
        RemoveOrphan(w.container_id, w.name, f"duplicate of {keep.name}")
        for w in workloads
        if w is not keep
    ]
    if desired.restarts_itself:
        return actions + _plan_restarted_by_runtime(agent, keep, desired, now)
    silent = now - agent.alive_at if agent.alive_at else timedelta(0)
    if not keep.alive:
        reason = f"exited with code {keep.exit_code}" if keep.exit_code is not None else keep.state
        actions.append(_restart(agent, keep, EventKind.EXITED, reason, desired))
    elif keep.spec_hash != desired.target(agent.agent_id).spec_hash:
        actions.append(Replace(keep.container_id, "spec changed", _start(agent, desired)))
    elif keep.state == "created":
        # Never started (a crash between create and start, a refused start): start when due.
        actions += [_start(agent, desired)] if agent.due(now) else []
    elif silent > policy.heartbeat_timeout:
        reason = f"no heartbeat for {silent.total_seconds():.0f}s"
        actions.append(_restart(agent, keep, EventKind.UNHEALTHY, reason, desired))
    elif keep.container_id != agent.container_id:
        actions.append(_adopt(agent, keep))
    elif _recovered(agent, policy, now):
        actions.append(Recover(agent.agent_id, agent.phase == Phase.CRASHLOOP))
    return actions


def _adopt(agent: DesiredAgent, keep: ObservedAgent) -> Adopt:
    """Adopt a live workload we never recorded (a crash between starting and recording it):
    it awaits its first beat unless the agent runs already or is crash-looping."""
    waiting = agent.phase in (Phase.PENDING, Phase.BACKOFF)
    return Adopt(agent.agent_id, keep.container_id, Phase.STARTING if waiting else agent.phase)


def _refused(keep: ObservedAgent, rollout: Rollout | None) -> bool:
    """Whether the runtime rolled this workload's update back itself during the rollout
    in force: the rollout hears of it; updating again would only fight the runtime."""
    return (
        rollout is not None
        and keep.rolled_back_at is not None
        and keep.rolled_back_at >= rollout.step_at
    )


def _recovered(agent: DesiredAgent, policy: Policy, now: datetime) -> bool:
    """Whether an agent with failures has stayed healthy long enough to forget them."""
    healthy = agent.healthy_since
    return bool(agent.failures and healthy is not None and now - healthy >= policy.restart_reset)


def _plan_restarted_by_runtime(
    agent: DesiredAgent, keep: ObservedAgent, desired: Desired, now: datetime
) -> list[Action]:
    """A workload whose runtime restarts it: count the failures the runtime saw, adopt,
    replace on a new spec, note its node; never restart it, and never act on silence
    (the runtime's health check does)."""
    actions: list[Action] = []
    seen = agent.failure_seen_at
    new = [failed for failed in keep.failed_at if seen is None or failed > seen]
    if new:
        then = after_failure(agent.failures + len(new) - 1, agent.phase, desired.policy)
        # the runtime restarts it on its own delay: no back-off of ours
        looping = then.phase == Phase.CRASHLOOP
        then = replace(then, phase=then.phase if looping else Phase.STARTING, delay=timedelta(0))
        actions.append(
            CountFailures(
                agent.agent_id, keep.container_id, len(new), new[-1], then, keep.spec_hash
            )
        )
    elif keep.container_id != agent.container_id:
        actions.append(_adopt(agent, keep))
    elif keep.spec_hash != desired.target(agent.agent_id).spec_hash and not _refused(
        keep, desired.rollout
    ):
        actions.append(Replace(keep.container_id, "spec changed", _start(agent, desired)))
    elif _recovered(agent, desired.policy, now):
        actions.append(Recover(agent.agent_id, agent.phase == Phase.CRASHLOOP))
    return actions + _place(agent, keep)


def _place(agent: DesiredAgent, keep: ObservedAgent) -> list[Action]:
    """Note a workload that moved to another node, or that its runtime cannot place (until
    it is placed: the runtime's words are the agent's reason meanwhile)."""
    if keep.waiting:
        unplaced = f"{UNPLACED}{keep.waiting}"
        return [] if agent.reason == unplaced else [Place(agent.agent_id, None, unplaced)]
    moved = keep.node != agent.node or (agent.reason or "").startswith(UNPLACED)
    return [Place(agent.agent_id, keep.node)] if keep.node is not None and moved else []


def _plan_missing(agent: DesiredAgent, desired: Desired, now: datetime) -> list[Action]:
    """An agent without any workload: start it, wait out its back-off, or count the loss."""
    if agent.container_id is None:
        return [_start(agent, desired)] if agent.due(now) else []
    return [_restart(agent, None, EventKind.VANISHED, "its workload disappeared", desired)]


def _rollout_agent(agent: DesiredAgent, workloads: list[ObservedAgent]) -> RolloutAgent:
    keep = _pick(agent, workloads) if workloads else None
    return RolloutAgent(
        agent.agent_id,
        agent.phase,
        keep.spec_hash if keep else None,
        agent.heartbeat_at,
        agent.failed_at,
        agent.failed_spec,
        keep.rolled_back_at if keep else None,
        keep.started_at if keep else None,
    )


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
    if desired.rollout_policy is not None:
        rolled = [
            _rollout_agent(agent, by_agent.get(agent.agent_id, []))
            for agent in desired.agents
            if agent.phase in WANTS_CONTAINER
        ]
        actions.extend(decide(desired.rollout, desired.image, rolled, desired.rollout_policy, now))
    return actions
