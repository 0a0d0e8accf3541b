"""A real `fleet up` daemon in a subprocess, and the real `fleet` CLI against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orchestrator.keys import agent_token, instance_key

FLEET = [sys.executable, "-m", "orchestrator.cli"]

PYTHON = "/opt/agent/bin/python"
# Runs inside the container: SIGKILL the agent's own process (not tini, not itself).
KILL_AGENT = (
    "import os, signal\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "    if b'agent_runtime' in cmd and b'-c' not in cmd:\n"
    "        os.kill(int(pid), signal.SIGKILL)\n"
)


def wait_until(predicate, what: str, timeout: float = 60, every: float = 0.5):
    """Poll `predicate()` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Daemon:
    state_dir: Path
    port: int
    instance: str
    runtime: str
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        env.update(
            FLEET_STATE_DIR=str(self.state_dir),
            FLEET_PORT=str(self.port),
            FLEET_INSTANCE=self.instance,
            FLEET_RUNTIME=self.runtime,
            FLEET_AGENT_CYCLE_SECONDS="0.5",
            FLEET_RECONCILE_INTERVAL_SECONDS="0.5",
            FLEET_STOP_GRACE_SECONDS="3",
        )
        env.update(self.extra_env)
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"daemon-{self.port}.log"

    @property
    def token(self) -> str:
        return (self.state_dir / "operator-token").read_text().strip()

    def start(self, timeout: float = 30) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([*FLEET, "up"], env=self.env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"daemon did not answer in {timeout}s")

    def kill(self) -> None:
        """SIGKILL: the crash the orchestrator must survive."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def agent_token(self, agent_id: str, generation: int = 0) -> str:
        """The gateway token the daemon hands this agent (derived from the instance key)."""
        return agent_token(instance_key(self.state_dir), agent_id, generation)

    def fleet(self, *args: str) -> subprocess.CompletedProcess:
        """Run the real `fleet` CLI against this daemon."""
        return subprocess.run(
            [*FLEET, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def agents(self) -> list[dict]:
        result = self.fleet("ls", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def wait_for(self, predicate, what: str, timeout: float = 60) -> list[dict]:
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
    """`fleet sandbox` as an operator runs it, in a subprocess that can be stopped and
    started again on the same port and state (a platform outage)."""

    state_dir: Path
    port: int
    controller_key: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        env.update(
            FLEET_STATE_DIR=str(self.state_dir), FLEET_CONTROLLER_API_KEY=self.controller_key
        )
        log = (self.state_dir.parent / "sandbox.log").open("ab")
        self.process = subprocess.Popen(
            [*FLEET, "sandbox", "--port", str(self.port)], env=env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
