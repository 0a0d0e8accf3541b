"""Runtime backends: where agents run. One narrow port, one module per backend, and
`preflight`: what the Docker and Swarm backends ask the engine before any agent starts
(`placement` reads Swarm's placement constraints for it).

A backend creates, lists, stops and removes agent workloads and reports them as
`ObservedAgent`s. It never decides anything: the reconciler does. Methods are blocking;
the executor calls them from worker threads.

Errors::

    RuntimeFailure            an engine call failed; the message is safe to show
     └── RuntimeUnavailable   the engine cannot be reached at all
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

LABEL_MANAGED = "fleet.managed"
LABEL_INSTANCE = "fleet.instance"
LABEL_AGENT_ID = "fleet.agent_id"
LABEL_SPEC_HASH = "fleet.spec_hash"


class RuntimeFailure(Exception):
    """A runtime call failed."""


class RuntimeUnavailable(RuntimeFailure):
    """The runtime's engine cannot be reached."""


@dataclass(frozen=True)
class AgentLaunch:
    """Everything a backend needs to start one agent."""

    agent_id: str
    name: str
    gateway_url: str
    token: str = field(repr=False)
    spec_hash: str
    image: str = ""  # the image ID to run ("": the agents' image as its tag names it now)

    def environment(self, token_file: str | None = None) -> dict[str, str]:
        """The agent's whole environment contract (DESIGN §4.1). With `token_file` the
        token is not in it: the backend puts the token in that file (a Swarm secret)."""
        token = (
            {"FLEET_AGENT_TOKEN_FILE": token_file}
            if token_file
            else {"FLEET_AGENT_TOKEN": self.token}
        )
        return {"FLEET_AGENT_ID": self.agent_id, "FLEET_GATEWAY_URL": self.gateway_url, **token}


@dataclass(frozen=True)
class ObservedAgent:
    """One workload as the runtime sees it."""

    container_id: str
    agent_id: str | None
    name: str
    state: str  # created | running | exited | dead | restarting | paused | removing
    exit_code: int | None
    spec_hash: str
    started_at: datetime | None = None
    node: str | None = None  # where it runs, on a runtime with several machines
    # When the runtime's own restarts saw it fail (a runtime that restarts by itself)
    failed_at: tuple[datetime, ...] = ()
    # When the runtime rolled the workload's last spec update back by itself (Swarm)
    rolled_back_at: datetime | None = None
    # Why the runtime has not started it, in its words (Swarm: a task no node takes)
    waiting: str | None = None

    @property
    def alive(self) -> bool:
        """Whether the workload is running or about to; a frozen (paused) one counts as
        alive, and the heartbeat timeout decides whether it is healthy."""
        return self.state in ("created", "running", "restarting", "paused")


@dataclass(frozen=True)
class ExitInfo:
    """How a workload ended, as far as its runtime knows."""

    exit_code: int | None
    oom_killed: bool = False
    error: str | None = None

    def describe(self) -> str:
        """One line for the agent's timeline."""
        if self.oom_killed:
            text = f"killed for exceeding its memory limit (OOM, exit code {self.exit_code})"
        elif self.exit_code is not None:
            text = f"exited with code {self.exit_code}"
        else:
            text = "stopped"
        return f"{text}: {self.error}" if self.error else text


@dataclass(frozen=True)
class RuntimeEvent:
    """Something the engine reports about one of our workloads (die, oom, start, …)."""

    action: str
    container_id: str
    agent_id: str | None
    exit_code: int | None = None


class Runtime(Protocol):
    """The port every backend implements."""

    name: str
    # Whether the runtime restarts failed workloads itself (Swarm): the orchestrator then
    # only counts their failures and never restarts one.
    restarts_itself: bool
    # Whether an exited workload can be started again as it is (Docker), as the engine's
    # own restart policy would: quicker than removing it and creating another.
    restarts_in_place: bool

    def image(self) -> str:
        """The agents' image as its tag names it now, as an immutable reference (an image
        ID); a rebuilt image is seen here without restarting the daemon."""
        ...

    def spec_hash(self, image: str) -> str:
        """Hash of everything that shapes a workload running `image` (limits, network…)."""
        ...

    def create(self, launch: AgentLaunch) -> ObservedAgent:
        """Start an agent; an existing workload with its name is adopted, not duplicated."""
        ...

    def replace(self, container_id: str, launch: AgentLaunch) -> ObservedAgent:
        """Give a running agent a new workload spec (a rollout): a new workload, or the
        same one updated in place where the runtime can (Swarm)."""
        ...

    def restart(self, container_id: str) -> None:
        """Start an exited workload again, unchanged (only where `restarts_in_place`);
        RuntimeFailure when it cannot be (it is gone, say)."""
        ...

    def list(self) -> list[ObservedAgent]:
        """Every workload of this instance, running or not."""
        ...

    def view(self) -> int | None:
        """Which full list the runtime's view of its workloads was rebuilt from last, while
        `watch` reports every change to it since; None when it does not (no event stream,
        or a full list due): then a reconcile tick plans for every agent."""
        ...

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, then kill after the grace period; stopping a stopped one is a no-op."""
        ...

    def remove(self, container_id: str) -> None:
        """Remove a workload; removing a missing one is a no-op."""
        ...

    def exit_info(self, container_id: str) -> ExitInfo | None:
        """How a stopped workload ended; None when it is gone or being removed."""
        ...

    def watch(self, on_event: Callable[[RuntimeEvent], None], stop: threading.Event) -> None:
        """Report workload events until `stop` is set, reconnecting when the engine
        goes away. Events only hasten the next tick; the full list stays the truth."""
        ...

    def logs(self, name: str, tail: int | None, follow: bool) -> Iterator[bytes]:
        """The output of agent `name`'s workload: the last `tail` lines (all without a
        tail), then with `follow` new output as it comes, until the caller stops reading.
        RuntimeFailure when there is none to read."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...


__all__ = [
    "LABEL_AGENT_ID",
    "LABEL_INSTANCE",
    "LABEL_MANAGED",
    "LABEL_SPEC_HASH",
    "AgentLaunch",
    "ExitInfo",
    "ObservedAgent",
    "Runtime",
    "RuntimeEvent",
    "RuntimeFailure",
    "RuntimeUnavailable",
]
