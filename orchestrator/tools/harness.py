"""The fleet harness: start a real daemon, sandbox or any ASGI app, poll it until it is
healthy, and clean up by label. `fleet demo`, the tests and the benchmarks all use it,
so there is one way to start and stop the real parts.

Processes are the real `fleet` CLI in subprocesses, each with its own state dir, port and
instance, so runs never touch each other's workloads. Nothing here is imported by the
daemon itself.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import uvicorn

from orchestrator.keys import agent_token, instance_key

if TYPE_CHECKING:
    from docker import DockerClient

FLEET = [sys.executable, "-m", "orchestrator.cli"]
# The agent image's interpreter, and a script for it that SIGKILLs the agent's own
# process inside its container (not tini, not itself): a crash as the engine sees it.
AGENT_PYTHON = "/opt/agent/bin/python"
KILL_AGENT = (
    "import os, signal\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "    if b'agent_runtime' in cmd and b'-c' not in cmd:\n"
    "        os.kill(int(pid), signal.SIGKILL)\n"
)
T = TypeVar("T")
_WORKER_PORTS = 20_000  # parallel test workers take ports from here up, 1,000 each
_PORTS_PER_WORKER = 1_000
_turn = itertools.count()


class HarnessError(Exception):
    """A part did not start; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now. Each worker of a parallel test run
    (pytest-xdist's `gw0`, `gw1`, …) takes its ports in turn from a range of its own,
    below the kernel's ephemeral ports, so two workers are never handed the same port
    between picking it and binding it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        base = _WORKER_PORTS + int(worker[2:]) * _PORTS_PER_WORKER
        for _ in range(_PORTS_PER_WORKER):
            port = base + next(_turn) % _PORTS_PER_WORKER
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_taken(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 60, every: float = 0.5) -> T:
    """Poll `predicate()` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def fleet_env(**values: str) -> dict[str, str]:
    """This process's environment without any FLEET_* setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update(values)
    return env


@contextlib.contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run an ASGI `app` under uvicorn in a thread on 127.0.0.1; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise HarnessError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Service:
    """One `fleet <command>` subprocess, healthy once `probe` answers."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    probe: str
    detach: bool = False  # its own session: a Ctrl-C meant for the caller does not reach it
    # Whether an answer at the probe comes from this service, not from another that got
    # the port first (a free port can be handed to two callers before either binds it).
    ours: Callable[[httpx.Response], bool] = lambda _answer: True
    process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        """Start it and wait until the probe answers 2xx, or raise HarnessError."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*FLEET, *self.command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.detach,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise HarnessError(f"fleet {' '.join(self.command)} exited: {' / '.join(tail)}")
            try:
                answer = httpx.get(self.probe, timeout=1)
                if answer.is_success and self.ours(answer):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        self.stop()  # a service that never answered must not outlive its caller
        raise HarnessError(f"nothing answered at {self.probe} after {timeout:.0f}s")

    def kill(self) -> None:
        """SIGKILL: the crash a part must survive."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, grace: float = 20) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Daemon:
    """A real `fleet up` on 127.0.0.1, with its own state dir, port and instance, and the
    real `fleet` CLI against it. Fast cycles unless `extra_env` says otherwise."""

    state_dir: Path
    port: int
    instance: str
    runtime: str
    extra_env: dict[str, str] = field(default_factory=dict)
    service: Service | None = None

    @property
    def env(self) -> dict[str, str]:
        fast = {
            "FLEET_AGENT_CYCLE_SECONDS": "0.5",
            "FLEET_RECONCILE_INTERVAL_SECONDS": "0.5",
            "FLEET_STOP_GRACE_SECONDS": "3",
        }
        return fleet_env(
            FLEET_STATE_DIR=str(self.state_dir),
            FLEET_GATEWAY_DIR=str(gateway_dir(self.instance)),
            FLEET_PORT=str(self.port),
            FLEET_INSTANCE=self.instance,
            FLEET_RUNTIME=self.runtime,
            **{**fast, **self.extra_env},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"daemon-{self.port}.log"

    @property
    def token(self) -> str:
        return (self.state_dir / "operator-token").read_text().strip()

    @property
    def process(self) -> subprocess.Popen | None:
        return self.service.process if self.service else None

    def start(self, timeout: float = 30) -> None:
        """Start `fleet up` and wait for its health. A first start whose port another
        process took meanwhile moves to a fresh port; a restart keeps its port, which its
        agents know."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        first = self.service is None
        for attempt in range(3):
            self.service = Service(
                ["up"],
                self.env,
                self.log_path,
                f"{self.url}/healthz",
                ours=lambda answer: answer.json().get("instance") == self.instance,
            )
            try:
                self.service.start(timeout)
                return
            except HarnessError as exc:
                if not (first and attempt < 2 and "address already in use" in str(exc)):
                    raise
                self.port = free_port()

    def kill(self) -> None:
        """SIGKILL: the crash the orchestrator must survive."""
        assert self.service is not None
        self.service.kill()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()

    def agent_token(self, agent_id: str, generation: int = 0) -> str:
        """The gateway token the daemon hands this agent (derived from the instance key)."""
        return agent_token(instance_key(self.state_dir), agent_id, generation)

    def fleet(self, *args: str) -> subprocess.CompletedProcess:
        """Run the real `fleet` CLI against this daemon."""
        return subprocess.run(
            [*FLEET, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def agents(self) -> list[dict]:
        """Every agent, retired ones included, as `fleet ls --all --json` lists them."""
        result = self.fleet("ls", "--all", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def wait_for(
        self, predicate: Callable[[list[dict]], bool], what: str, timeout: float = 60
    ) -> list[dict]:
        """Poll `fleet ls --json` until `predicate(agents)` holds."""
        deadline = time.monotonic() + timeout
        agents: list[dict] = []
        while time.monotonic() < deadline:
            agents = self.agents()
            if predicate(agents):
                return agents
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; agents: {agents}")


@dataclass
class Sandbox:
    """`fleet sandbox` as an operator runs it, stoppable and startable again on the same
    port and state (a platform outage)."""

    state_dir: Path
    port: int
    controller_key: str
    extra_env: dict[str, str] = field(default_factory=dict)
    service: Service | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        env = fleet_env(
            FLEET_STATE_DIR=str(self.state_dir),
            FLEET_CONTROLLER_API_KEY=self.controller_key,
            **self.extra_env,
        )
        log = self.state_dir.parent / "sandbox.log"
        self.service = Service(
            ["sandbox", "--port", str(self.port)], env, log, f"{self.url}/healthz"
        )
        self.service.start(timeout)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


def gateway_dir(instance: str) -> Path:
    """The gateway socket's directory of a harness daemon: short, as a socket path must
    be, and kept across the daemon's restarts (its agents' containers mount it)."""
    return Path(tempfile.gettempdir()) / f"fleet-gw-{instance}"


def _remove_swarm_objects(client: DockerClient, ours: dict[str, str]) -> int:
    """Remove the services, secrets and networks `ours` filters; returns how many services."""
    from docker.errors import DockerException

    services = client.services.list(filters=ours)
    for service in services:
        service.remove()

    def leftovers() -> bool:
        # a network is in use until the services' tasks are gone, on every node
        for item in [*client.secrets.list(filters=ours), *client.networks.list(filters=ours)]:
            with contextlib.suppress(DockerException):
                item.remove()
        return not (client.secrets.list(filters=ours) or client.networks.list(filters=ours))

    wait_until(leftovers, "the instance's secrets and networks to go", timeout=60, every=1)
    return len(services)


def remove_instance(instance: str) -> int:
    """Remove every container labelled with `instance` (and on a Swarm manager its
    services, secrets and networks), and its gateway directory, and wait until the engine
    lists none of its containers; returns how many containers and services. No engine,
    or nothing of ours on it, removes nothing."""
    import docker
    from docker.errors import APIError, DockerException, NotFound

    from orchestrator.runtime import LABEL_INSTANCE
    from orchestrator.runtime.preflight import manages_swarm

    shutil.rmtree(gateway_dir(instance), ignore_errors=True)
    try:
        client = docker.from_env(version="auto", timeout=30)
    except DockerException:
        return 0
    ours = {"label": f"{LABEL_INSTANCE}={instance}"}
    try:
        removed = 0
        if manages_swarm(client.info()):
            try:
                removed += _remove_swarm_objects(client, ours)
            except APIError as exc:
                # another test may leave its Swarm meanwhile: the services go with it
                if exc.status_code != HTTPStatus.SERVICE_UNAVAILABLE:
                    raise
        # The engine's own list, not the SDK's, which inspects each container it lists and
        # fails on one that goes meanwhile (a Swarm task's, or another clean-up's)
        found = client.api.containers(all=True, filters=ours)
        for container in found:
            try:
                client.api.remove_container(container["Id"], force=True)
            except NotFound:
                pass
            except APIError as exc:  # the engine may be removing it already (a Swarm task)
                if "already in progress" not in str(exc.explanation):
                    raise
        wait_until(
            lambda: not client.api.containers(all=True, filters=ours),
            "the instance's containers to go",
            timeout=60,
        )
        return removed + len(found)
    finally:
        client.close()
