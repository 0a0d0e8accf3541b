"""Rolling upgrades: which image each agent should run, and when a rollout moves on,
finishes or rolls back. Pure: no I/O; `plan()` asks it every tick.

A rollout begins when the agents' image (the tag FLEET_AGENT_IMAGE names, resolved to an
image ID every tick) is no longer the one the fleet was last rolled to. Agents are
*admitted* to the new image a batch at a time (FLEET_ROLLOUT_BATCH of the live fleet,
at least one); the first batch is the canary. The next batch is admitted only when every
admitted agent runs the new spec and has heartbeated as `running` after a settling time.
An admitted agent that backs off or crash-loops, or a batch that is not healthy by its
deadline, rolls the whole rollout back: every agent's target is the old image again, an
alert says why, and that image is not tried again until the tag moves on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.lifecycle import Phase, RolloutState


@dataclass(frozen=True)
class Target:
    """What an agent's workload should run: an image ID and the spec hash it makes."""

    image: str
    spec_hash: str


@dataclass(frozen=True)
class Rollout:
    """The fleet's latest rollout, with spec hashes computed for today's settings."""

    id: int
    old: Target
    new: Target
    state: RolloutState
    admitted: frozenset[str]
    step_at: datetime  # when the latest batch was admitted

    def target(self, agent_id: str) -> Target:
        """The image the agent should run now."""
        if self.state == RolloutState.DONE:
            return self.new
        live = self.state in (RolloutState.ROLLING, RolloutState.PAUSED)
        return self.new if live and agent_id in self.admitted else self.old


@dataclass(frozen=True)
class RolloutPolicy:
    """The rollout's knobs (from settings)."""

    batch_fraction: float
    settle: timedelta  # how long an admitted agent must be running before the next batch
    deadline: timedelta  # how long a batch may take to become healthy


@dataclass(frozen=True)
class RolloutAgent:
    """What the rollout needs to know about one live agent."""

    agent_id: str
    phase: Phase
    runs: str | None  # the spec hash of its workload, None without one
    heartbeat_at: datetime | None
    failed_at: datetime | None = None  # its last failure
    failed_spec: str | None = None  # what its workload ran then
    refused_at: datetime | None = None  # when its runtime rolled its update back itself
    started_at: datetime | None = None  # when its workload (task) started, if known


@dataclass(frozen=True)
class BeginRollout:
    """Start rolling `new` out over `old`, the canary batch admitted (a rollout whose old
    and new image are the same is only a record of what the fleet runs)."""

    old_image: str
    new_image: str
    admitted: tuple[str, ...]


@dataclass(frozen=True)
class StepRollout:
    """Move rollout `rollout_id` on: admit more agents, finish, or roll back (`reason`
    says why, and an alert carries it)."""

    rollout_id: int
    state: RolloutState
    admitted: tuple[str, ...]
    reason: str | None = None


RolloutAction = BeginRollout | StepRollout


def batch_size(fraction: float, fleet: int) -> int:
    """Agents per batch: a share of the live fleet, at least one."""
    return max(1, math.ceil(fraction * fleet))


def _next_batch(admitted: frozenset[str], agents: Sequence[RolloutAgent], size: int) -> tuple:
    waiting = sorted(a.agent_id for a in agents if a.agent_id not in admitted)
    return tuple(sorted(admitted)) + tuple(waiting[:size])


def decide(
    rollout: Rollout | None,
    image: str,
    agents: Sequence[RolloutAgent],
    policy: RolloutPolicy,
    now: datetime,
) -> list[RolloutAction]:
    """What the rollout does this tick, given the image the tag names now and the live
    agents that want a workload."""
    size = batch_size(policy.batch_fraction, len(agents))
    if not image:
        return []  # the tag names no image (or the runtime has none): nothing to roll
    if rollout is None:
        return [BeginRollout(image, image, ())]
    rejected = rollout.state == RolloutState.ROLLED_BACK and image == rollout.new.image
    if image != rollout.new.image and not rejected:
        base = rollout.new.image if rollout.state == RolloutState.DONE else rollout.old.image
        canary = () if base == image else _next_batch(frozenset(), agents, size)
        return [BeginRollout(base, image, canary)]
    if rollout.state != RolloutState.ROLLING:
        return []
    return _step(rollout, agents, policy, size, now)


def _step(
    rollout: Rollout,
    agents: Sequence[RolloutAgent],
    policy: RolloutPolicy,
    size: int,
    now: datetime,
) -> list[RolloutAction]:
    admitted = [a for a in agents if a.agent_id in rollout.admitted]

    def healthy(agent: RolloutAgent) -> bool:
        # A heartbeat counts from the new workload's start on: an old one still stopping
        # (Swarm updates a service in place) may beat a last time.
        began = max(rollout.step_at, agent.started_at or rollout.step_at)
        return (
            agent.runs == rollout.new.spec_hash
            and agent.phase == Phase.RUNNING
            and agent.heartbeat_at is not None
            and agent.heartbeat_at >= began + policy.settle
        )

    # Only a failure on the new spec since its batch began counts: an agent crash-looping
    # on the old image may be the very one the new image mends.
    since = rollout.step_at
    refused = [a for a in admitted if a.refused_at is not None and a.refused_at >= since]
    if refused:
        reason = f"the runtime rolled agent {refused[0].agent_id}'s update back"
        return [StepRollout(rollout.id, RolloutState.ROLLED_BACK, (), reason)]
    failing = [
        a
        for a in admitted
        if a.phase in (Phase.BACKOFF, Phase.CRASHLOOP, Phase.FAILED)
        and a.failed_at is not None
        and a.failed_at >= since
        and a.failed_spec == rollout.new.spec_hash
    ]
    if failing:
        reason = f"agent {failing[0].agent_id} on the new image is {failing[0].phase}"
        return [StepRollout(rollout.id, RolloutState.ROLLED_BACK, (), reason)]
    if all(healthy(a) for a in admitted):
        if len(rollout.admitted & {a.agent_id for a in agents}) >= len(agents):
            return [StepRollout(rollout.id, RolloutState.DONE, tuple(sorted(rollout.admitted)))]
        return [
            StepRollout(
                rollout.id, RolloutState.ROLLING, _next_batch(rollout.admitted, agents, size)
            )
        ]
    if now - rollout.step_at > policy.deadline:
        late = next(a for a in admitted if not healthy(a))
        reason = (
            f"agent {late.agent_id} was not running the new image healthily "
            f"{policy.deadline.total_seconds():.0f}s after its batch began"
        )
        return [StepRollout(rollout.id, RolloutState.ROLLED_BACK, (), reason)]
    return []
