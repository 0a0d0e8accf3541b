"""`fleet demo`: the sandbox platform, a daemon and N agents in one command.

Everything runs in a throw-away state dir with its own instance name, so the demo never
touches another fleet. On the way out the daemon is stopped and every container labelled
with the demo's instance is removed: nothing is left running.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

FLEET = [sys.executable, "-m", "orchestrator.cli"]


class DemoError(Exception):
    """The demo could not start; the message says why."""


@dataclass
class Demo:
    """A running demo: where to reach it and how to sign in."""

    state_dir: Path
    url: str
    platform_url: str
    token: str
    env: dict[str, str]


def _free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise DemoError(f"{' '.join(process.args[3:])} exited: {' / '.join(tail)}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise DemoError(f"nothing answered at {url} after {timeout:.0f}s; see {log}")


@contextmanager
def running_demo(
    runtime: str, speed: float, port: int, sandbox_port: int, keep: Path | None
) -> Iterator[Demo]:
    """Start the sandbox and the daemon; stop both and remove every container on exit."""
    for what, number in (("daemon", port), ("sandbox", sandbox_port)):
        if not _free(number):
            raise DemoError(f"port {number} for the {what} is taken; pass another with --port")
    state = keep or Path(tempfile.mkdtemp(prefix="agent-fleet-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    instance = f"demo-{secrets.token_hex(3)}"
    platform_url = f"http://127.0.0.1:{sandbox_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update(
        FLEET_STATE_DIR=str(state),
        FLEET_INSTANCE=instance,
        FLEET_RUNTIME=runtime,
        FLEET_PORT=str(port),
        FLEET_SANDBOX_PORT=str(sandbox_port),
        FLEET_PLATFORM_URL=platform_url,
        FLEET_CONTROLLER_API_KEY=secrets.token_hex(16),
        FLEET_AGENT_CYCLE_SECONDS="2",
        FLEET_MARKET_TIME_SCALE=str(speed),
        # A busy market: every symbol has news on most days, so agents trade within minutes.
        FLEET_MARKET_EVENT_RATE="0.8",
        FLEET_MARKET_ANCHOR=datetime.now(UTC).isoformat(),
        FLEET_EQUITY_SAMPLE_SECONDS="10",
        FLEET_DASHBOARD_ACTIONS="true",
    )
    for name in ("FLEET_AGENT_IMAGE", "FLEET_DOCKER_NETWORK"):
        if name in os.environ:
            env[name] = os.environ[name]
    processes: list[subprocess.Popen] = []
    try:
        for command, url in (("sandbox", platform_url), ("up", f"http://127.0.0.1:{port}")):
            log = state / f"{command}.log"
            with log.open("ab") as out:
                processes.append(
                    subprocess.Popen(
                        [*FLEET, command],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,  # Ctrl-C reaches the demo, which stops them
                    )
                )
            probe = f"{url}/openapi.json" if command == "sandbox" else f"{url}/healthz"
            _wait_healthy(probe, processes[-1], log, 60)
        token = (state / "operator-token").read_text().strip()
        yield Demo(state, f"http://127.0.0.1:{port}", platform_url, token, env)
    finally:
        for process in reversed(processes):
            _stop(process)
        if runtime == "docker":
            _remove_containers(instance)
        if keep is None:
            shutil.rmtree(state, ignore_errors=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _remove_containers(instance: str) -> None:
    """Remove every container of the demo's instance (they outlive a stopped daemon)."""
    import docker
    from docker.errors import DockerException

    from orchestrator.runtime import LABEL_INSTANCE

    try:
        client = docker.from_env(version="auto", timeout=30)
        for container in client.containers.list(
            all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}
        ):
            container.remove(force=True)
        client.close()
    except DockerException as exc:
        raise DemoError(f"could not remove the demo's containers: {exc}") from None
