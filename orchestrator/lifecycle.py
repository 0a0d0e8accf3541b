"""The agent lifecycle's vocabulary (DESIGN §3): phases, timeline event kinds, alert kinds.

Every box speaks these words; each is defined here once and stored as its string value,
so the store, the plan, the views and the CLI can never disagree on a spelling.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Where an agent is in its lifecycle; stored as its string value."""

    PENDING = "pending"
    PROVISIONING = "provisioning"
    STARTING = "starting"
    RUNNING = "running"
    UNHEALTHY = "unhealthy"  # alive but silent past the heartbeat timeout; being restarted
    BACKOFF = "backoff"  # its workload died; waiting out the restart back-off
    CRASHLOOP = "crashloop"  # failed again and again: alerted, still retried at the cap
    RETIRING = "retiring"
    RETIRED = "retired"
    FAILED = "failed"


# Phases in which the agent should have a live container (or is waiting to get one back).
WANTS_CONTAINER = frozenset(
    {
        Phase.PENDING,
        Phase.STARTING,
        Phase.RUNNING,
        Phase.UNHEALTHY,
        Phase.BACKOFF,
        Phase.CRASHLOOP,
    }
)
# Phases that end the agent's life; nothing more happens to it.
FINAL = frozenset({Phase.RETIRED, Phase.FAILED})
# Phases of an agent that still has a workload or an account to look after.
UNFINISHED = frozenset(set(Phase) - FINAL)
# Phases that count toward the fleet's size.
LIVE = UNFINISHED - {Phase.RETIRING}
# Phases the views list unless asked for every agent: retired ones pile up as a fleet
# scales down and up, and are kept (their orders and timelines stay readable).
NOT_RETIRED = frozenset(set(Phase) - {Phase.RETIRED})


class EventKind(StrEnum):
    """What one entry of an agent's timeline records."""

    CREATED = "created"
    PROVISIONING = "provisioning"
    PROVISION_RETRY = "provision_retry"
    ACCOUNT_CREATED = "account_created"
    FAILED = "failed"
    CONTAINER_STARTED = "container_started"
    START_FAILED = "start_failed"
    RUNNING = "running"
    ADOPTED = "adopted"
    PLACED = "placed"
    UNPLACED = "unplaced"  # its runtime cannot place its workload (Swarm: no node takes it)
    CONTAINER_REPLACED = "container_replaced"
    UNHEALTHY = "unhealthy"
    EXITED = "exited"
    OOM_KILLED = "oom_killed"
    VANISHED = "vanished"
    STOPPED = "stopped"  # its workload was removed with the `fleet demo` that ran it
    RECOVERED = "recovered"
    RETIRE_REQUESTED = "retire_requested"
    RETIRE_WAITING = "retire_waiting"  # the platform holds a retirement up
    POSITIONS_LEFT = "positions_left"
    FLATTENED = "flattened"
    FLATTEN_INCOMPLETE = "flatten_incomplete"
    ACCOUNT_DISABLED = "account_disabled"
    RETIRED = "retired"


# Timeline kinds that are a failure of the agent's workload (each one is a restart).
FAILURES = frozenset(
    {
        EventKind.EXITED,
        EventKind.OOM_KILLED,
        EventKind.VANISHED,
        EventKind.UNHEALTHY,
        EventKind.START_FAILED,
    }
)
# Timeline kinds that say what became of a retiring agent's positions.
SETTLEMENTS = frozenset(
    {EventKind.FLATTENED, EventKind.FLATTEN_INCOMPLETE, EventKind.POSITIONS_LEFT}
)


class AlertKind(StrEnum):
    """What an alert in the outbox is about."""

    CRASHLOOP = "crashloop"
    RECOVERED = "recovered"
    PAUSED = "paused"
    RESUMED = "resumed"
    REPORT = "report"
    EQUITY_FLOOR = "equity_floor"  # an agent's equity fell under the risk rail's floor
    DRAWDOWN = "drawdown"  # an agent's equity fell too far below its peak
    REJECTIONS = "rejections"  # an agent's latest orders were all rejected
    ORDER_CAP = "order_cap"  # an agent sent more orders in a day than the cap allows
    ROLLOUT_FAILED = "rollout_failed"  # a new agent image was rolled back
    ROLLOUT_DONE = "rollout_done"  # every agent runs a new agent image


class RolloutState(StrEnum):
    """Where a rollout of a new agent image stands."""

    ROLLING = "rolling"
    PAUSED = "paused"
    DONE = "done"
    ROLLED_BACK = "rolled_back"
