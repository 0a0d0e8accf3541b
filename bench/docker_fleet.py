"""Fleet benchmarks on the real Docker runtime: spawn time and idle memory per agent.

A real `fleet up` daemon (the tests' harness) with its own instance and state dir; every
container it made is removed at the end, whatever happens.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from pathlib import Path

import docker

from bench.figures import Figure
from orchestrator.tools.harness import Daemon, free_port, remove_instance

MIB = 1024 * 1024


def _all_running(daemon: Daemon, count: int, timeout: float) -> None:
    """Return once `count` agents are running (heartbeating)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agents = daemon.api("GET", "/v1/agents", params={"phase": "running"}).json()
        if len(agents) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{count} agents not running after {timeout}s")


def _idle_memory(client: docker.DockerClient, instance: str) -> tuple[int, float, float]:
    """Mean cgroup memory usage of the fleet's containers: raw, and less inactive file cache."""
    containers = client.containers.list(filters={"label": f"fleet.instance={instance}"})
    raw, working = [], []
    for container in containers:
        stats = container.stats(stream=False, one_shot=True)["memory_stats"]
        inner = stats.get("stats", {})
        inactive = inner.get("total_inactive_file", inner.get("inactive_file", 0))
        raw.append(stats["usage"] / MIB)
        working.append((stats["usage"] - inactive) / MIB)
    return len(containers), statistics.mean(raw), statistics.mean(working)


def fleet(agents: int) -> list[Figure]:
    """Spawn `agents` on Docker, time them to heartbeating, then measure idle memory."""
    instance = f"bench{secrets.token_hex(3)}"
    client = docker.from_env(version="auto")
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        daemon = Daemon(
            Path(tmp) / "state", free_port(), instance, "docker", {"FLEET_AGENT_CYCLE_SECONDS": "5"}
        )
        try:
            daemon.start()
            started = time.monotonic()
            response = daemon.api("POST", "/v1/agents", json={"count": agents})
            response.raise_for_status()
            _all_running(daemon, agents, timeout=300)
            spawn_seconds = time.monotonic() - started  # the request is inside the window
            time.sleep(15)  # let start-up allocations settle: the figure is *idle* memory
            sampled, raw, working = _idle_memory(client, instance)
        finally:
            daemon.stop()
            remove_instance(instance)
            client.close()
    return [
        Figure(
            f"spawn {agents} → all heartbeating",
            spawn_seconds,
            "s",
            "≤ 30 s for 100",
            None,
            f"{agents / spawn_seconds:.1f} agents/s",
        ),
        Figure(
            "memory per idle agent (cgroup usage)",
            raw,
            "MiB",
            "≤ 24 MiB",
            raw <= 24,
            f"mean of {sampled}; {working:.1f} MiB less inactive file cache",
        ),
    ]
