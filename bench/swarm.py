"""The fleet on a two-node Swarm beside the Docker runtime, in one run (issue 15):

- spawn N → all heartbeating, on each runtime;
- crash → replacement heartbeating: an agent's container is killed (`docker kill` on
  whichever node runs it); the time from the kill to the first heartbeat of the
  replacement (on Swarm, Swarm restarts it; on Docker, the orchestrator does).

The Swarm is the tests' recipe (scripts/two-node-swarm.sh): this engine is the manager,
`node2` runs in a network namespace. It is taken down at the end, whatever happens.
"""

from __future__ import annotations

import secrets
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import docker

from bench.figures import Figure
from orchestrator.settings import Settings
from orchestrator.tools.harness import Daemon, free_port, remove_instance, wait_until

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "two-node-swarm.sh"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _running(daemon: Daemon) -> list[dict]:
    return daemon.api("GET", "/v1/agents", params={"phase": "running"}).json()


def _spawn(daemon: Daemon, agents: int) -> float:
    """Seconds from the spawn request to every agent heartbeating."""
    started = time.monotonic()
    daemon.api("POST", "/v1/agents", json={"count": agents}).raise_for_status()
    wait_until(lambda: len(_running(daemon)) >= agents, f"{agents} running", 600, 0.2)
    return time.monotonic() - started


def _container(engines: list[docker.DockerClient], agent_id: str, not_id: str = ""):
    """The agent's running container on whichever engine runs it."""
    for engine in engines:
        found = engine.containers.list(
            filters={"label": f"fleet.agent_id={agent_id}", "status": "running"}
        )
        for container in found:
            if container.id != not_id:
                return container
    return None


def _crashes(daemon: Daemon, engines: list[docker.DockerClient], trials: int) -> list[float]:
    """Kill one agent's container per trial; seconds until its replacement heartbeats."""
    times = []
    for trial in range(trials):
        agent = sorted(_running(daemon), key=lambda a: a["id"])[trial]
        old = wait_until(lambda a=agent: _container(engines, a["id"]), "its container", 30)
        started = time.monotonic()
        old.kill()
        new = wait_until(
            lambda a=agent, o=old: _container(engines, a["id"], o.id), "a replacement", 60, 0.05
        )
        began = datetime.fromisoformat(new.attrs["State"]["StartedAt"][:26] + "+00:00")

        def beating(a: dict = agent, began: datetime = began) -> bool:
            beat = daemon.api("GET", f"/v1/agents/{a['id']}").json()["last_heartbeat_at"]
            return beat is not None and datetime.fromisoformat(beat) > began

        wait_until(beating, "the replacement's heartbeat", 60, 0.05)
        times.append(time.monotonic() - started)
    return times


def _runtime(runtime: str, agents: int, trials: int, engines: list) -> tuple[float, list[float]]:
    instance = f"bench{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        env = {"FLEET_AGENT_CYCLE_SECONDS": "1", "FLEET_RESTART_RESET_SECONDS": "1"}
        if runtime == "swarm":
            env["FLEET_SWARM_ENCRYPTED"] = "false"  # this kernel has no ESP (see the README)
        daemon = Daemon(Path(tmp) / "state", free_port(), instance, runtime, env)
        try:
            daemon.start(timeout=60)
            spawn = _spawn(daemon, agents)
            time.sleep(5)  # past start-up, so every kill is of a running agent
            return spawn, _crashes(daemon, engines, trials)
        finally:
            daemon.stop()
            remove_instance(instance)


def swarm(agents: int = 100, trials: int = 10) -> list[Figure]:
    """Spawn and crash recovery on a two-node Swarm and on Docker, in one run."""
    up = subprocess.run(
        ["bash", str(SCRIPT), "up", Settings().agent_image],
        capture_output=True,
        text=True,
        check=True,
    )
    manager = docker.from_env(version="auto")
    node2 = docker.DockerClient(base_url=up.stdout.strip().splitlines()[-1], version="auto")
    try:
        results = {
            runtime: _runtime(runtime, agents, trials, [manager, node2])
            for runtime in ("swarm", "docker")
        }
    finally:
        node2.close()
        manager.close()
        subprocess.run(["bash", str(SCRIPT), "down"], capture_output=True)
    figures = []
    for runtime, (spawn, crashes) in results.items():
        figures += [
            Figure(
                f"{runtime}: spawn {agents} → all heartbeating",
                spawn,
                "s",
                detail=f"{agents / spawn:.1f} agents/s",
            ),
            Figure(
                f"{runtime}: crash → replacement heartbeating (median)",
                statistics.median(crashes),
                "s",
                detail=f"p95 {_pct(crashes, 0.95):.2f} s over {len(crashes)} docker kills",
            ),
        ]
    return figures
