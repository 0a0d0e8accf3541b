"""Process backend: one subprocess per agent, the embedded default where Docker is absent.

Runs the same agent entry point as the container (`python -m agent_runtime`) with the
same three environment variables. Children are bound to the daemon with
`PR_SET_PDEATHSIG`, so a killed daemon leaves no agent behind; because Linux ties that
signal to the *thread* that forked, every child is forked from one long-lived thread.
There is no isolation here: it is for development and demos, not for untrusted agents.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from orchestrator.runtime import (
    AgentLaunch,
    ExitInfo,
    ObservedAgent,
    RuntimeEvent,
    RuntimeFailure,
)
from orchestrator.settings import Settings

_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 0.2


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the daemon dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Child:
    process: subprocess.Popen
    agent_id: str
    name: str
    spec_hash: str
    started_at: datetime


class ProcessRuntime:
    """Runtime backed by local subprocesses."""

    name = "process"
    restarts_itself = False
    restarts_in_place = False  # an exited process cannot be started again

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log_dir = settings.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._children: dict[str, _Child] = {}
        self._lock = threading.Lock()
        # The one thread that forks every child (see the module docstring).
        self._forker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-forker")

    def image(self) -> str:
        """No images here: children run the daemon's own interpreter and code."""
        return ""

    def spec_hash(self, image: str) -> str:
        """Hash of the interpreter and gateway URL the children run with."""
        spec = f"{sys.executable}|{self.settings.gateway_url}"
        return hashlib.sha256(spec.encode()).hexdigest()[:16]

    def replace(self, container_id: str, launch: AgentLaunch) -> ObservedAgent:
        """Stop the agent's process and start another."""
        self.stop(container_id, self.settings.stop_grace_seconds)
        self.remove(container_id)
        return self.create(launch)

    def restart(self, container_id: str) -> None:
        """Never asked (`restarts_in_place` is False)."""
        raise RuntimeFailure("an exited process cannot be started again")

    def _spawn(self, launch: AgentLaunch) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        env.update(launch.environment())
        log = open(self.log_dir / f"{launch.name}.log", "ab")  # noqa: SIM115 - child owns it
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "agent_runtime"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                close_fds=True,
            )
        finally:
            log.close()

    def create(self, launch: AgentLaunch) -> ObservedAgent:
        """Start the agent's process, or adopt the live one this daemon already runs for it."""
        with self._lock:
            existing = self._children.get(launch.agent_id)
            if existing is not None and existing.process.poll() is None:
                return self._observe(existing)
            try:
                process = self._forker.submit(self._spawn, launch).result()
            except OSError as exc:
                raise RuntimeFailure(f"starting {launch.name}: {exc}") from None
            child = _Child(
                process, launch.agent_id, launch.name, launch.spec_hash, datetime.now(UTC)
            )
            self._children[launch.agent_id] = child
            return self._observe(child)

    @staticmethod
    def _observe(child: _Child) -> ObservedAgent:
        code = child.process.poll()
        return ObservedAgent(
            container_id=f"pid-{child.process.pid}",
            agent_id=child.agent_id,
            name=child.name,
            state="running" if code is None else "exited",
            exit_code=code,
            spec_hash=child.spec_hash,
            started_at=child.started_at,
        )

    def view(self) -> int | None:
        """None: its children's exits are polled, their other changes not reported."""
        return None

    def list(self) -> list[ObservedAgent]:
        """Every child this daemon started and has not removed."""
        with self._lock:
            return [self._observe(child) for child in self._children.values()]

    def _find(self, container_id: str) -> _Child | None:
        with self._lock:
            for child in self._children.values():
                if f"pid-{child.process.pid}" == container_id:
                    return child
        return None

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        child = self._find(container_id)
        if child is None or child.process.poll() is not None:
            return
        child.process.terminate()
        try:
            child.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()

    def remove(self, container_id: str) -> None:
        """Kill if still running and forget the child."""
        child = self._find(container_id)
        if child is None:
            return
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()
        with self._lock:
            self._children.pop(child.agent_id, None)

    def exit_info(self, container_id: str) -> ExitInfo | None:
        """The exit status of a child that ended (a negative code is the killing signal)."""
        child = self._find(container_id)
        if child is None:
            return None
        return ExitInfo(child.process.poll())

    def watch(self, on_event: Callable[[RuntimeEvent], None], stop: threading.Event) -> None:
        """Report each child's exit once, polling: there is no engine to stream from."""
        reported: set[int] = set()
        while not stop.wait(_WATCH_SECONDS):
            with self._lock:
                children = list(self._children.values())
            for child in children:
                code = child.process.poll()
                if code is not None and child.process.pid not in reported:
                    reported.add(child.process.pid)
                    on_event(RuntimeEvent("die", f"pid-{child.process.pid}", child.agent_id, code))

    def logs(self, name: str, tail: int | None, follow: bool) -> Iterator[bytes]:
        """The agent's log file, kept across its restarts."""
        path = self.log_dir / f"{name}.log"
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise RuntimeFailure(f"agent {name} has written no output yet") from None
        return _read_log(handle, tail, follow)

    def close(self) -> None:
        """Stop every child: agents never outlive the daemon that started them."""
        with self._lock:
            children = list(self._children.values())
        for child in children:
            self.stop(f"pid-{child.process.pid}", self.settings.stop_grace_seconds)
        self._forker.shutdown(wait=False)


def _read_log(handle: BinaryIO, tail: int | None, follow: bool) -> Iterator[bytes]:
    """The last `tail` lines of an open log, then its growth while `follow`."""
    with handle:
        yield b"".join(deque(handle, maxlen=tail) if tail is not None else handle)
        while follow:
            chunk = handle.read()
            if chunk:
                yield chunk
            else:
                time.sleep(_WATCH_SECONDS)
