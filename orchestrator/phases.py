"""Agent lifecycle phases (DESIGN §3) and the groupings the rest of the code asks about."""

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
