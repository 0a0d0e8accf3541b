"""Supervision benchmarks on the real Docker runtime (issue 6, DESIGN §6):

- crash → replacement heartbeating: the agent's process is SIGKILLed inside its container;
  the time until its replacement's first heartbeat, with the orchestrator restarting it,
  and, as the reference, with Docker's own `on-failure` policy on the same container as
  the daemon makes it (that agent heartbeats to the floor's stand-in gateway, since no
  orchestrator owns it);
- hang detection: `docker pause` → the agent recorded unhealthy, against its timeout;
- adoption: 100 running agents, the daemon SIGKILLed and started again: time to the
  first full list, to every agent heartbeating again, and the restarts it caused.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import docker

from bench.figures import Figure
from bench.floor import launch, stand_in
from orchestrator.settings import Settings
from orchestrator.tools.harness import (
    AGENT_PYTHON,
    KILL_AGENT,
    Daemon,
    free_port,
    remove_instance,
    wait_until,
)

_DOCKER_RESET_SECONDS = 10.5
REFERENCE = "benchref"  # the reference's instances are named so


def _wait(predicate, timeout: float, every: float = 0.02):
    return wait_until(predicate, "the benchmark's condition", timeout, every)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _daemon(tmp: str, instance: str, **env: str) -> Daemon:
    return Daemon(Path(tmp) / "state", free_port(), instance, "docker", env)


def _after(moment: datetime, iso: str | None) -> bool:
    return iso is not None and datetime.fromisoformat(iso) > moment


def replacement_seconds(daemon: Daemon, client: docker.DockerClient, agent: dict) -> float:
    """SIGKILL the agent's process in its container; seconds until the gateway received
    its replacement's first heartbeat (the store has it a batch later). The replacement
    is the same container started again, as with Docker's policy, or a new one."""
    url = f"/v1/agents/{agent['id']}"
    started = datetime.now(UTC)
    client.containers.get(agent["container_id"]).exec_run([AGENT_PYTHON, "-c", KILL_AGENT])
    dead = datetime.now(UTC)  # every beat received from now on comes from the replacement

    def replaced() -> datetime | None:
        a = daemon.api("GET", url).json()
        if a["restarts"] <= agent["restarts"] or not _after(dead, a["last_heartbeat_at"]):
            return None
        return datetime.fromisoformat(a["last_heartbeat_at"])

    return (_wait(replaced, 120) - started).total_seconds()


def _orchestrator_restarts(client: docker.DockerClient, tmp: str, trials: int) -> list[float]:
    daemon = _daemon(
        tmp,
        f"bench{secrets.token_hex(3)}",
        FLEET_AGENT_CYCLE_SECONDS="1",
        FLEET_RESTART_RESET_SECONDS="1",
        FLEET_RECONCILE_INTERVAL_SECONDS="2",
    )
    daemon.start()
    try:
        (agent,) = daemon.api("POST", "/v1/agents", json={"count": 1}).json()["agents"]
        url = f"/v1/agents/{agent['id']}"

        def healthy() -> dict | None:
            # Failures forgotten too, so every crash is a first one (an immediate restart).
            a = daemon.api("GET", url).json()
            return a if a["phase"] == "running" and a["failures"] == 0 else None

        return [replacement_seconds(daemon, client, _wait(healthy, 60)) for _ in range(trials)]
    finally:
        daemon.stop()
        remove_instance(daemon.instance)


@contextmanager
def docker_policy(
    client: docker.DockerClient, image: str, cycle_seconds: float = 1, **settings: object
) -> Iterator[Callable[[], float]]:
    """The reference: an agent in a container made as the daemon makes them, under Docker's
    own `on-failure` policy instead of the orchestrator, heartbeating to the floor's
    stand-in gateway (`bench.floor`). Yields `restart()`: SIGKILL its process once, and
    the seconds from the kill to its next heartbeat. The same host config on both sides:
    what differs is only who restarts the agent (`settings`: the daemon's, as in `floor`)."""
    with stand_in(client, REFERENCE, agent_cycle_seconds=cycle_seconds, **settings) as (
        runtime,
        gateway,
    ):
        name = f"reference-{secrets.token_hex(3)}"
        # created so, not updated: `docker update` fails on crun 1.8 with cgroup v1
        runtime.restart_policy = "on-failure"
        container = client.containers.get(launch(runtime, image, name))
        authorization = f"Bearer {name}"
        _wait(lambda: authorization in gateway.beats, 60)
        up = gateway.beats[authorization]  # when the container last came up (monotonic)

        def restart() -> float:
            nonlocal up
            # Docker doubles its restart delay (from 100 ms) unless the container ran 10 s:
            # let it, so every trial is a first restart, as with the orchestrator.
            time.sleep(max(0.0, up + _DOCKER_RESET_SECONDS - time.monotonic()))
            started = time.monotonic()
            container.exec_run([AGENT_PYTHON, "-c", KILL_AGENT])
            # Every beat after the kill has returned comes from the new process.
            dead = time.monotonic()
            _wait(lambda: gateway.beats[authorization] > dead, 60)
            up = gateway.beats[authorization]
            return up - started

        yield restart


def docker_policy_restarts(
    client: docker.DockerClient,
    trials: int,
    image: str,
    cycle_seconds: float = 1,
    **settings: object,
) -> list[float]:
    """`trials` restarts of the reference (`docker_policy`) in a row, in seconds."""
    with docker_policy(client, image, cycle_seconds, **settings) as restart:
        return [restart() for _ in range(trials)]


def _hang_detection(client: docker.DockerClient, tmp: str, trials: int, timeout: int) -> list:
    daemon = _daemon(
        tmp,
        f"bench{secrets.token_hex(3)}",
        FLEET_AGENT_CYCLE_SECONDS="1",
        FLEET_HEARTBEAT_TIMEOUT_SECONDS=str(timeout),
    )
    daemon.start()
    try:
        (agent,) = daemon.api("POST", "/v1/agents", json={"count": 1}).json()["agents"]
        url = f"/v1/agents/{agent['id']}"

        def running() -> dict | None:
            a = daemon.api("GET", url).json()
            return a if a["phase"] == "running" else None

        times = []
        for _ in range(trials):
            container_id = _wait(running, 60)["container_id"]
            before = _count(daemon, url, "unhealthy")
            started = time.monotonic()
            client.containers.get(container_id).pause()
            _wait(lambda n=before: _count(daemon, url, "unhealthy") > n, timeout + 60, 0.1)
            times.append(time.monotonic() - started)
        return times
    finally:
        daemon.stop()
        remove_instance(daemon.instance)


def _count(daemon: Daemon, url: str, kind: str) -> int:
    return sum(e["kind"] == kind for e in daemon.api("GET", f"{url}/events").json())


def _adoption(client: docker.DockerClient, tmp: str, agents: int) -> tuple[float, float, int, int]:
    daemon = _daemon(tmp, f"bench{secrets.token_hex(3)}", FLEET_AGENT_CYCLE_SECONDS="5")
    daemon.start()
    try:
        daemon.api("POST", "/v1/agents", json={"count": agents}).raise_for_status()

        def running(since: datetime | None = None) -> list[dict] | None:
            found = daemon.api("GET", "/v1/agents", params={"phase": "running"}).json()
            fresh = [a for a in found if since is None or _after(since, a["last_heartbeat_at"])]
            return found if len(fresh) == agents else None

        before = _wait(running, 600, 0.5)
        containers = {a["id"]: a["container_id"] for a in before}
        daemon.kill()
        restarted_at = datetime.now(UTC)
        started = time.monotonic()
        daemon.start()
        _wait(lambda: daemon.api("GET", "/healthz").json()["listed"], 60, 0.01)
        listed = time.monotonic() - started
        after = _wait(lambda: running(restarted_at), 120, 0.2)
        beating = time.monotonic() - started
        restarts = sum(a["restarts"] for a in after)
        changed = sum(containers[a["id"]] != a["container_id"] for a in after)
        return listed, beating, restarts, changed
    finally:
        daemon.stop()
        remove_instance(daemon.instance)


def supervision(trials: int = 20, adopt: int = 100) -> list[Figure]:
    """Crash recovery against Docker's restart policy, hang detection, adoption."""
    client = docker.from_env(version="auto")
    image = Settings().agent_image
    timeout = 10
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        ours = _orchestrator_restarts(client, tmp, trials)
        reference = docker_policy_restarts(client, trials, image)
        hangs = _hang_detection(client, tmp + "/hang", 3, timeout)
        listed, beating, restarts, changed = _adoption(client, tmp + "/adopt", adopt)
    client.close()
    median = statistics.median(ours)
    return [
        Figure(
            "crash → replacement heartbeating (median)",
            median,
            "s",
            "≤ 2 s",
            median <= 2,
            f"p95 {_pct(ours, 0.95):.2f} s over {trials} SIGKILLs of the agent process",
        ),
        Figure(
            "same, Docker on-failure policy (reference)",
            statistics.median(reference),
            "s",
            "",
            None,
            f"p95 {_pct(reference, 0.95):.2f} s over {trials}; the same container as ours",
        ),
        Figure(
            "hang (docker pause) → recorded unhealthy",
            statistics.median(hangs),
            "s",
            f"timeout {timeout} s",
            None,
            f"median of {len(hangs)}; max {max(hangs):.1f} s",
        ),
        Figure(
            f"daemon SIGKILL with {adopt} running → first full list",
            listed,
            "s",
            "≤ 5 s",
            listed <= 5,
            f"all heartbeating again after {beating:.1f} s; "
            f"{restarts} restarts, {changed} containers replaced",
        ),
    ]
