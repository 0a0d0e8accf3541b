"""The spawn's physical floor: how fast this machine can bring agents up with no
orchestrator work at all, measured the way `bench scale` measures ours.

The agents' containers are created and started by the daemon's own Docker backend
(`DockerRuntime.create`: the same host config, mounts, limits and two engine calls), as
many at once as the daemon's workload lane runs. They run the real agent image and entry
point. What they call home to is a stand-in for the gateway, on the same kind of socket
in the same mounted directory, that answers from constants: a bootstrap without a
platform account, and an empty answer to every heartbeat. An agent is up at its first
heartbeat, as in ours.

So the floor is the engine, the kernel and the agents' own start-up; what ours spends
beyond it is the orchestrator's work (accounts, the store, planning, the relay) and the
agents' platform login.

The same stand-in (`stand_in`) serves the reference for crash recovery: one such agent
under Docker's own restart policy (`bench.supervision.docker_policy`).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import ThreadingUnixStreamServer

import docker

from agent_runtime.contract import Bootstrap, ClockSpec, Schedule
from bench import machine
from orchestrator.runtime import AgentLaunch
from orchestrator.runtime.docker import DockerRuntime
from orchestrator.settings import Settings
from orchestrator.tools.harness import gateway_dir, remove_instance, wait_until

FLOOR = "benchfloor"  # the floor's instances are named so


class _StandIn(BaseHTTPRequestHandler):
    """The gateway reduced to constants; it notes when each token last beat."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real gateway
    server: StandIn

    def do_GET(self) -> None:
        self._answer(self.server.bootstrap)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/v1/agent/heartbeat":
            self.server.beat(self.headers.get("authorization", ""))
        self._answer(b"{}")

    def _answer(self, body: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a thousand agents beat every cycle."""


class StandIn(ThreadingUnixStreamServer):
    """The stand-in gateway on its socket; `beats`: each agent's last heartbeat, by the
    `Authorization` it sent (`Bearer <token>`), in `time.monotonic()` seconds."""

    daemon_threads = True

    def __init__(self, path: Path, bootstrap: Bootstrap) -> None:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        super().__init__(str(path), _StandIn)
        path.chmod(0o666)  # the agents' user is not ours
        self.bootstrap = json.dumps(bootstrap.to_json()).encode()
        self.beats: dict[str, float] = {}
        self._lock = threading.Lock()

    def beat(self, authorization: str) -> None:
        with self._lock:
            self.beats[authorization] = time.monotonic()

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet about an agent gone while its connection was open (killed by a trial, or
        removed at the end); as loud as ever about anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _bootstrap(settings: Settings) -> Bootstrap:
    return Bootstrap(
        agent_id="floor",
        name="floor",
        strategy="momentum",
        personality=None,
        platform=None,
        schedule=Schedule(settings.agent_cycle_seconds, settings.agent_cycle_seconds / 10),
        risk_limits=settings.risk_limits(),
        clock=ClockSpec(1.0, datetime.now(UTC), "always"),
        paused=False,
    )


@contextmanager
def stand_in(
    client: docker.DockerClient, prefix: str, **settings: object
) -> Iterator[tuple[DockerRuntime, StandIn]]:
    """The daemon's Docker backend for an instance of its own, named `prefix` and a random
    suffix (`settings` over the defaults), and the stand-in gateway its agents call home
    to; on the way out, the stand-in stops and every container of the instance goes."""
    instance = f"{prefix}{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="fleet-floor-") as tmp:
        config = Settings(
            instance=instance, state_dir=Path(tmp), gateway_dir=gateway_dir(instance), **settings
        )
        gateway = StandIn(config.gateway_socket, _bootstrap(config))
        threading.Thread(target=gateway.serve_forever, name="floor-gateway", daemon=True).start()
        try:
            yield DockerRuntime(config, client), gateway
        finally:
            gateway.shutdown()
            gateway.server_close()
            remove_instance(instance)


def launch(runtime: DockerRuntime, image: str, name: str) -> str:
    """Create and start one agent as the daemon does (its token is its `name`); its
    container's ID."""
    url = runtime.settings.gateway_url
    return runtime.create(AgentLaunch(name, name, url, name, "floor", image)).container_id


def floor(
    client: docker.DockerClient, image: str, count: int, timeout: float = 600, **settings: object
) -> tuple[float, dict[str, float]]:
    """Seconds until `count` agents started as the daemon starts them all heartbeat to the
    stand-in, and the CPU seconds each part of the machine used meanwhile (`bench`: this
    process, which makes the engine calls and is the stand-in). `settings`: the daemon's,
    over the defaults (its agents' OCI runtime, say)."""
    with stand_in(client, FLOOR, **settings) as (runtime, gateway):
        label = f"fleet.instance={runtime.settings.instance}"
        pids, containers = {"bench": os.getpid()}, ("containers", label)
        before, started = machine.reading(pids, client, containers), time.monotonic()
        with ThreadPoolExecutor(runtime.settings.max_concurrent_actions) as pool:
            list(pool.map(lambda n: launch(runtime, image, f"floor-{n}"), range(count)))
        wait_until(lambda: len(gateway.beats) >= count, "every agent's first beat", timeout)
        seconds = time.monotonic() - started
        return seconds, machine.spent(before, machine.reading(pids, client, containers))
