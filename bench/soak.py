"""`python -m bench soak --agents N --minutes M --chaos`: a fleet on Docker against the
sandbox's fast market, for a long time, with faults, watching for what grows.

Every `--fault-every` seconds (with `--chaos`) one fault from the fault suite's menu hits
the fleet, in rounds that each take the whole menu in a random (seeded) order: an agent's
process SIGKILLed, `docker kill`, `docker rm -f`, a process over the container's memory
limit (the kernel's OOM killer), a hang (`docker pause`), the daemon SIGKILLed and started
again, the sandbox down for 30 s, the store unreachable for 20 s (PostgreSQL through a
relay that is cut), and, with `--engine-restart`, the Docker engine restarted (it stops
every container on the machine, so never while other fleets share the engine).

Every few seconds it samples the daemon's RSS, open file descriptors and threads, the
store's size, the daemon's log volume, the agents' heartbeat age (p50, p99) and their
restarts. At the end it lets the fleet settle, checks the invariants
(`tools.invariants`), retires every agent and checks again: no container left, every
account disabled.
"""

from __future__ import annotations

import random
import secrets
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import docker
import httpx
import sqlalchemy as sa

from orchestrator.lifecycle import LIVE
from orchestrator.tools.harness import (
    AGENT_PYTHON,
    KILL_AGENT,
    Daemon,
    HarnessError,
    Sandbox,
    free_port,
    remove_instance,
    wait_until,
)
from orchestrator.tools.invariants import containers, violations
from orchestrator.tools.servers import TcpRelay

CONTROLLER_KEY = "soak-controller-key-0123456789"
FAULTS = (
    "agent_sigkill",
    "docker_kill",
    "docker_rm",
    "oom",
    "hang",
    "daemon_sigkill",
    "sandbox_down",
    "store_unavailable",
)
SAMPLE_SECONDS = 5.0
SANDBOX_DOWN_SECONDS = 30.0
STORE_DOWN_SECONDS = 20.0
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sample:
    """The fleet and its daemon at one moment of the soak."""

    minute: float
    rss_mib: float
    fds: int
    threads: int
    store_mib: float
    log_mib: float
    beat_p50: float
    beat_p99: float
    restarts: int
    running: int
    daemon_pid: int  # which life of the daemon (it is SIGKILLed and started again)


@dataclass
class Soak:
    """What a soak did and found."""

    agents: int
    minutes: float
    samples: list[Sample] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    filled: int = 0


def _proc(pid: int) -> tuple[float, int, int]:
    """RSS (MiB), open file descriptors and threads of process `pid`."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss = int(status["VmRSS"].split()[0]) / 1024
    return rss, len(list(Path(f"/proc/{pid}/fd").iterdir())), int(status["Threads"])


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


class _Fleet:
    """The soak's daemon, sandbox, store and engine, and the faults it can inject."""

    def __init__(
        self,
        tmp: Path,
        agents: int,
        cycle: float,
        time_scale: float,
        database_url: str | None,
        seed: int,
    ) -> None:
        self.instance = f"soak{secrets.token_hex(3)}"
        self.client = docker.from_env(version="auto", timeout=120)
        self.rng = random.Random(seed)
        self.agents = agents
        market = {
            "FLEET_MARKET_TIME_SCALE": f"{time_scale:g}",
            "FLEET_MARKET_EVENT_RATE": "0.8",
            "FLEET_MARKET_ANCHOR": datetime.now(UTC).isoformat(),
        }
        self.sandbox = Sandbox(tmp / "sandbox", free_port(), CONTROLLER_KEY, market)
        self.sandbox.state_dir.mkdir(parents=True)
        self.relay: TcpRelay | None = None
        env = {
            **market,
            "FLEET_AGENT_CYCLE_SECONDS": str(cycle),
            "FLEET_RECONCILE_INTERVAL_SECONDS": "2",
            "FLEET_STOP_GRACE_SECONDS": "5",
            "FLEET_HEARTBEAT_TIMEOUT_SECONDS": str(max(15.0, 3 * cycle)),
            # The faults are the soak's, not the agents': forgiven after a healthy stretch
            "FLEET_RESTART_RESET_SECONDS": "30",
            "FLEET_PLATFORM_URL": self.sandbox.url,
            "FLEET_CONTROLLER_API_KEY": CONTROLLER_KEY,
        }
        self.store_url = f"sqlite:///{tmp / 'state' / 'fleet.db'}"
        if database_url:
            url = sa.make_url(database_url)
            self.relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
            through = url.set(host="127.0.0.1", port=self.relay.port)
            env["FLEET_DATABASE_URL"] = through.render_as_string(hide_password=False)
            self.store_url = database_url
        self.daemon = Daemon(tmp / "state", free_port(), self.instance, "docker", env)
        self._timers: list[threading.Timer] = []
        self.down: set[str] = set()

    def start(self) -> None:
        if self.relay is not None:
            self.relay.__enter__()
        self.sandbox.start()
        self.daemon.start()
        self.daemon.api("POST", "/v1/agents", json={"count": self.agents}).raise_for_status()

    def running(self) -> list[dict]:
        """The running agents; none while the daemon cannot say (its store is down)."""
        answer = self.daemon.api("GET", "/v1/agents", params={"phase": "running"})
        return answer.json() if answer.status_code == 200 else []

    def sample(self, began: float) -> Sample:
        assert self.daemon.process is not None
        rss, fds, threads = _proc(self.daemon.process.pid)
        answer = self.daemon.api("GET", "/v1/agents")
        if answer.status_code != 200:  # the store is down: no sample this time
            raise ValueError(answer.text)
        agents = answer.json()
        ages = [  # a retired agent's last beat only grows older: not the fleet's health
            a["heartbeat_age_seconds"]
            for a in agents
            if a["phase"] in LIVE and a["heartbeat_age_seconds"] is not None
        ]
        return Sample(
            (time.monotonic() - began) / 60,
            rss,
            fds,
            threads,
            self.store_bytes() / 2**20,
            self.daemon.log_path.stat().st_size / 2**20,
            _pct(ages, 0.5),
            _pct(ages, 0.99),
            sum(a["restarts"] for a in agents),
            sum(a["phase"] == "running" for a in agents),
            self.daemon.process.pid,
        )

    def store_bytes(self) -> int:
        if self.relay is None:
            path = Path(self.store_url.removeprefix("sqlite:///"))
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        engine = sa.create_engine(self.store_url)
        try:
            with engine.connect() as connection:
                return connection.execute(
                    sa.text("SELECT pg_database_size(current_database())")
                ).scalar_one()
        finally:
            engine.dispose()

    # -- the faults -------------------------------------------------------------------

    def inject(self, fault: str) -> bool:
        """Inject `fault`; False when it could not be (no victim, or already down)."""
        if fault in ("sandbox_down", "store_unavailable", "engine_restart"):
            if fault in self.down or (fault == "store_unavailable" and self.relay is None):
                return False
            {"sandbox_down": self._sandbox_down, "store_unavailable": self._store_down}.get(
                fault, self._engine_restart
            )()
            return True
        if fault == "daemon_sigkill":
            self.daemon.kill()
            self._start_daemon()
            return True
        # A victim the engine runs too: not one paused by `hang`, or gone to another fault
        up = {c["Id"] for c in containers(self.client, self.instance) if c["State"] == "running"}
        victims = sorted(a["container_id"] for a in self.running() if a["container_id"] in up)
        if not victims:
            return False
        try:
            container = self.client.containers.get(self.rng.choice(victims))
            act: dict[str, Callable[[], object]] = {
                "agent_sigkill": lambda: container.exec_run([AGENT_PYTHON, "-c", KILL_AGENT]),
                "docker_kill": container.kill,
                "docker_rm": lambda: container.remove(force=True),
                "oom": lambda: container.exec_run(
                    [AGENT_PYTHON, "-c", "x = b'x' * (512 * 2**20)"], detach=True
                ),
                "hang": container.pause,
            }
            act[fault]()
        except docker.errors.APIError:
            return False  # it went away meanwhile (another fault, or its restart)
        return True

    def _start_daemon(self) -> None:
        """Start the daemon again, as its supervisor would: until it stays up (it cannot
        while its store is unreachable)."""
        deadline = time.monotonic() + 180
        while True:
            try:
                self.daemon.start(timeout=30)
                return
            except HarnessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def _later(self, seconds: float, what: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, what)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _sandbox_down(self) -> None:
        self.down.add("sandbox_down")
        self.sandbox.stop()

        def up() -> None:
            self.sandbox.start()
            self.down.discard("sandbox_down")

        self._later(SANDBOX_DOWN_SECONDS, up)

    def _store_down(self) -> None:
        assert self.relay is not None
        relay = self.relay
        self.down.add("store_unavailable")
        relay.cut()

        def up() -> None:
            relay.restore()
            self.down.discard("store_unavailable")

        self._later(STORE_DOWN_SECONDS, up)

    def _engine_restart(self) -> None:
        found = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout
        subprocess.run(["kill", found.split()[0]], check=True)
        wait_until(lambda: not Path(f"/proc/{found.split()[0]}").exists(), "dockerd to stop", 60)
        subprocess.run(["bash", str(REPO / "scripts" / "start-dockerd.sh")], check=True)

    def heal(self) -> None:
        """End the outages now: the soak is over."""
        for timer in self._timers:
            timer.cancel()
        if "sandbox_down" in self.down:
            self.sandbox.start()
        if "store_unavailable" in self.down and self.relay is not None:
            self.relay.restore()
        self.down.clear()

    def close(self) -> None:
        self.heal()
        self.daemon.stop()
        self.sandbox.stop()
        if self.relay is not None:
            self.relay.__exit__()
        remove_instance(self.instance)
        self.client.close()


def soak(
    agents: int,
    minutes: float,
    *,
    chaos: bool = True,
    faults: Sequence[str] = FAULTS,
    fault_every: float = 10.0,
    cycle: float = 5.0,
    time_scale: float = 4320.0,
    database_url: str | None = None,
    seed: int = 1,
    on_sample: Callable[[Sample], None] = lambda _sample: None,
) -> Soak:
    """Run the soak; the result says what was injected, sampled and found. The market runs
    `time_scale` times faster than the wall clock (4320: three market days a minute, every
    agent trading at each of its heartbeats; a large fleet needs a slower one)."""
    result = Soak(agents, minutes)
    faults = [f for f in faults if database_url or f != "store_unavailable"]  # needs the relay
    with tempfile.TemporaryDirectory(prefix="fleet-soak-") as tmp:
        fleet = _Fleet(Path(tmp), agents, cycle, time_scale, database_url, seed)
        try:
            fleet.start()
            wait_until(lambda: len(fleet.running()) >= agents, "the fleet running", 900, 2)
            began = time.monotonic()
            next_fault = began + fault_every
            menu: list[str] = []
            next_sample = began
            while (now := time.monotonic()) < began + minutes * 60:
                if now >= next_sample:
                    try:
                        result.samples.append(fleet.sample(began))
                        on_sample(result.samples[-1])
                    except (OSError, ValueError, httpx.HTTPError):
                        pass  # the daemon is between a kill and its start, or its store down
                    next_sample += SAMPLE_SECONDS
                if chaos and faults and now >= next_fault:  # an empty menu injects nothing
                    if not menu:  # a new round: the whole menu, shuffled
                        menu = fleet.rng.sample(list(faults), len(faults))
                    fault = menu.pop()
                    if fleet.inject(fault):
                        result.faults[fault] += 1
                    else:  # not now (no victim running, or already down): later in the round
                        menu.insert(0, fault)
                    next_fault += fault_every
                time.sleep(0.2)
            fleet.heal()
            result.violations = _settle_and_check(fleet)
            result.filled = _filled(fleet)
            result.violations += _retire_and_check(fleet)
        finally:
            fleet.close()
    return result


def _settle_and_check(fleet: _Fleet) -> list[str]:
    def settled(agents: list[dict]) -> bool:
        live = [a for a in agents if a["phase"] in LIVE]
        return len(live) == fleet.agents and all(
            a["phase"] == "running" and (a["heartbeat_age_seconds"] or 99) < 30 for a in live
        )

    try:  # a timeout says where each agent stood
        fleet.daemon.wait_for(settled, "the fleet settled after the faults", 300)
    except AssertionError as exc:
        return [str(exc)]
    return violations(
        fleet.daemon,
        fleet.client,
        fleet.instance,
        fleet.agents,
        (fleet.sandbox.url, CONTROLLER_KEY),
    )


def _filled(fleet: _Fleet) -> int:
    from orchestrator.tools.invariants import filled

    orders = filled(fleet.sandbox.url, CONTROLLER_KEY, fleet.daemon.agents())
    return sum(len(o) for o in orders.values())


def _retire_and_check(fleet: _Fleet) -> list[str]:
    retired = fleet.daemon.fleet("retire", "--all")
    if retired.returncode != 0:
        return [f"fleet retire --all failed: {retired.stderr.strip()}"]
    try:
        wait_until(lambda: not containers(fleet.client, fleet.instance), "no container", 300, 2)
    except AssertionError as exc:
        return [str(exc)]
    return violations(
        fleet.daemon, fleet.client, fleet.instance, 0, (fleet.sandbox.url, CONTROLLER_KEY)
    )
