"""`python -m bench scale --agents 1000`: one daemon on Docker grows its fleet in steps.

The fleet trades against a real sandbox with the default cycle. At each step the fleet
grows to the next size, and the benchmark waits until every agent heartbeats ("added
in"). It lets the fleet settle, then measures over a window:

- the daemon's CPU, as the utime + stime it gained in `/proc`, per second of the window;
- each container's memory, from its cgroup's usage;
- each container's engine shim (`containerd-shim-runc-v2 -id <container>`), as its PSS
  from `smaps_rollup`, so pages shared between shims count once in all;
- the reconcile tick, as the mean of `fleet_reconcile_duration_seconds` over the window,
  and apart, the ticks that planned for every agent (a resync, once a minute) and those
  between, which planned for what the engine's events and the store's writes named, with
  the agents each planned for (`fleet_reconcile_planned_agents`);
- where the machine's CPU goes over the same window: the daemon, the sandbox (the
  platform's stand-in), the agents (their cgroups' `cpuacct.usage`), the engine
  (dockerd, containerd, the shims) and the kernel's threads (here mostly `kdamond`).

While each step's agents come up, it reads what the machine's CPU did (`bench/machine.py`):
each part's CPU seconds, and what none of them accounts for (`runc`, the benchmark).

After the last step it measures crash → replacement heartbeating, with the whole fleet
running, against Docker's own `on-failure` policy on the same container in the same run,
a trial of each in turn. The spawn's physical floor (`bench/floor.py`) is as many agents
started by the daemon's own Docker backend, heartbeating to a stand-in gateway that
answers from constants; its CPU is read the same way. It is measured before the first
step and after the last, and the last step's spawn is compared with the mean of the two:
the machine's speed drifts within a run, and the two floors bracket ours.
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import docker

from bench import machine
from bench.figures import Figure
from bench.floor import floor
from bench.supervision import docker_policy, replacement_seconds
from feeds.calendar import NEW_YORK
from orchestrator.lifecycle import LIVE
from orchestrator.tools.harness import (
    Daemon,
    Sandbox,
    free_port,
    remove_instance,
    wait_until,
)

MIB = 1024 * 1024
STEPS = (100, 300, 500, 1000)
CONTROLLER_KEY = "bench-controller-key-0123456789"
SETTLE_SECONDS = 30.0
WINDOW_SECONDS = 60.0
MEMORY_GOAL_MIB = 20.0
CPU_GOAL = 0.10
SPAWN_GOAL_AGENTS, SPAWN_GOAL_SECONDS = 1000, 180.0  # from zero to all heartbeating
MAX_RESTARTS = 0.02  # of the fleet, while it grows
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory/docker")
_TICKS = re.compile(  # the reconciler's ticks, each figure by scope
    r"^fleet_reconcile_(duration_seconds_sum|duration_seconds_count|planned_agents_total)"
    r'\{scope="(\w+)"\} ([0-9.e+-]+)$',
    re.M,
)
_TICK_FIGURES = ("duration_seconds_sum", "duration_seconds_count", "planned_agents_total")


@dataclass(frozen=True)
class Step:
    """The fleet measured at one size."""

    agents: int
    added: int
    added_seconds: float
    daemon_cpu: float  # share of one core
    host_mib: float  # cgroup + shim, per agent
    cgroup_mib: float  # mean
    ticks: dict[str, tuple[float, ...]]  # scope → seconds, ticks, agents planned in the window
    machine: dict[str, float]  # share of one core: daemon, sandbox, agents, engine, kernel
    spawn_cpu: dict[str, float]  # CPU seconds each part used while the step's agents came up

    @property
    def tick_seconds(self) -> float:
        """The mean tick, of either scope."""
        seconds = sum(figures[0] for figures in self.ticks.values())
        count = sum(figures[1] for figures in self.ticks.values())
        return seconds / count if count else float("nan")


def _ticks(daemon: Daemon) -> dict[tuple[str, str], float]:
    """(scope, one of `_TICK_FIGURES`) → the reconcile ticks' figure, from /metrics now."""
    text = daemon.api("GET", "/metrics").text
    return {(scope, figure): float(value) for figure, scope, value in _TICKS.findall(text)}


def _tick_detail(ticks: dict[str, tuple[float, ...]]) -> str:
    """Each scope's mean tick, how many there were, and the agents each planned for."""
    return "; ".join(
        f"{scope} {seconds / count:.3f} s over {count:.0f}, planning for {planned / count:.1f}"
        for scope, (seconds, count, planned) in sorted(ticks.items(), reverse=True)
        if count
    )


def _shims() -> dict[str, int]:
    """Container ID → PSS bytes of its shim."""
    shims = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv[0].endswith(b"containerd-shim-runc-v2") or b"-id" not in argv:
                continue
            container = argv[argv.index(b"-id") + 1].decode()
            rollup = (proc / "smaps_rollup").read_text()
        except (OSError, IndexError):
            continue
        if pss := re.search(r"^Pss:\s+(\d+) kB", rollup, re.M):
            shims[container] = int(pss.group(1)) * 1024
    return shims


def _memory(client: docker.DockerClient, instance: str) -> tuple[float, float, int]:
    """Per agent: mean cgroup usage and mean host memory (cgroup + shim), in MiB."""
    containers = client.api.containers(filters={"label": f"fleet.instance={instance}"})
    shims = _shims()
    usage, host = [], []
    for c in containers:
        try:
            used = int((CGROUP_MEMORY / c["Id"] / "memory.usage_in_bytes").read_text())
        except OSError:
            continue  # gone meanwhile
        usage.append(used / MIB)
        host.append((used + shims.get(c["Id"], 0)) / MIB)
    return statistics.mean(usage), statistics.mean(host), len(usage)


class Overloaded(Exception):
    """The fleet stopped converging: agents were restarted for silence while it grew."""


def _grow(daemon: Daemon, to: int, timeout: float) -> float:
    """Spawn up to `to` agents; seconds until every one heartbeats. Overloaded when more
    than MAX_RESTARTS of the fleet was restarted meanwhile (a daemon too slow to hear its
    agents restarts them, and the restarts make it slower still).

    It watches the fleet's summary, not the list of agents: at 1,000 agents, listing them
    every 2 s was a sixth of the daemon's CPU while they came up (py-spy, `--gil`), work
    the floor's stand-in never does."""
    started = time.monotonic()
    have = daemon.api("GET", "/v1/fleet").json()["running"]
    daemon.api("POST", "/v1/agents", json={"count": to - have}).raise_for_status()

    def grown() -> bool:
        fleet = daemon.api("GET", "/v1/fleet").json()
        if (restarts := fleet["restarts_last_hour"]) > MAX_RESTARTS * to:
            raise Overloaded(f"{restarts} restarts while growing to {to}")
        return fleet["running"] >= to

    wait_until(grown, f"{to} agents heartbeating", timeout, 2.0)
    return time.monotonic() - started


def _shrink(daemon: Daemon, to: int) -> None:
    """Retire agents down to `to`, and wait until the rest run with fresh heartbeats."""
    daemon.fleet("scale", str(to))

    def settled() -> bool:
        agents = daemon.api("GET", "/v1/agents").json()
        live = [a for a in agents if a["phase"] in LIVE]
        return len(live) == to and all(
            a["phase"] == "running" and (a["heartbeat_age_seconds"] or 99) < 30 for a in live
        )

    wait_until(settled, f"the fleet back at {to}", 900, 5.0)


def _measure(daemon: Daemon, read: Callable[[], dict], client: docker.DockerClient, instance: str):
    cpu, ticks, began = read(), _ticks(daemon), time.monotonic()
    time.sleep(WINDOW_SECONDS)
    cpu_after, ticks_after = read(), _ticks(daemon)
    shares = machine.shares(cpu, cpu_after, time.monotonic() - began)
    tick = {
        scope: tuple(
            ticks_after.get((scope, figure), 0) - ticks.get((scope, figure), 0)
            for figure in _TICK_FIGURES
        )
        for scope in {scope for scope, _figure in ticks_after}
    }
    cgroup, host, _sampled = _memory(client, instance)
    return shares["daemon"], host, cgroup, tick, shares


def _pid(process: subprocess.Popen | None) -> int:
    assert process is not None, "the service is not running"
    return process.pid


def _crash_recovery(
    daemon: Daemon, client: docker.DockerClient, image: str, trials: int, runtime: dict
) -> tuple[list[float], list[float]]:
    """Crash → replacement heartbeating for `trials` running agents, and as many restarts of
    Docker's reference (`docker_policy`), taken in turn so that both sides meet the machine
    in the same state: its speed swings within minutes. Each of ours is a first failure,
    restarted at once as the reference is (a later one waits its back-off, 1 s +). Each
    agent is read again just before its trial: one restarted since the listing, or whose
    container stops before the kill, is passed over for the next."""
    running = daemon.api("GET", "/v1/agents", params={"phase": "running"}).json()
    ours, reference = [], []
    with docker_policy(client, image, cycle_seconds=10, **runtime) as restart:
        for listed in running:
            if len(ours) == trials:
                break
            agent = daemon.api("GET", f"/v1/agents/{listed['id']}").json()
            if agent["phase"] != "running" or agent["failures"]:
                print(f"crash trial: {agent['name']} passed over, {agent['phase']}", flush=True)
                continue
            try:
                ours.append(replacement_seconds(daemon, client, agent))
            except docker.errors.APIError as exc:  # stopped or replaced since it was read
                print(f"crash trial: {agent['name']} passed over: {exc}", flush=True)
                continue
            reference.append(restart())
    return ours, reference


def closed_market(now: datetime) -> dict[str, str]:
    """Settings for a market clock that reads the coming Saturday, 06:00 in New York, at
    `now` and runs twice as fast from there: NYSE hours keep the market closed (the fleet
    idle: heartbeats and account reads, no trading) for the next 24 wall hours at least."""
    days = (5 - now.astimezone(NEW_YORK).weekday()) % 7 or 7
    saturday = datetime.combine(
        now.astimezone(NEW_YORK).date() + timedelta(days=days), dt_time(6), NEW_YORK
    )
    # market = anchor + 2 (wall - anchor): at `now` it is `saturday` when anchor = 2 now - saturday
    anchor = now - (saturday - now)
    return {
        "FLEET_MARKET_HOURS": "nyse",
        "FLEET_MARKET_TIME_SCALE": "2",
        "FLEET_MARKET_ANCHOR": anchor.astimezone(UTC).isoformat(),
    }


def scale(
    steps: Sequence[int] = STEPS, trials: int = 9, idle: bool = False, oci_runtime: str = ""
) -> list[Figure]:
    """Grow a fleet through `steps`; the table's figures, crash recovery and the floor.
    `idle`: the market is closed throughout, so the fleet heartbeats and does not trade.
    `oci_runtime`: FLEET_AGENT_OCI_RUNTIME, for ours, the floor and Docker's reference."""
    instance = f"bench{secrets.token_hex(3)}"
    client = docker.from_env(version="auto", timeout=300)
    measured: list[Step] = []
    overloaded = ""
    market = closed_market(datetime.now(UTC)) if idle else {}
    anchor = [machine.anchor()]
    image = client.images.get("agent-fleet-agent:latest").id
    last_added = steps[-1] - (steps[-2] if len(steps) > 1 else 0)
    runtime = {"agent_oci_runtime": oci_runtime}
    floors = [floor(client, image, last_added, **runtime)]
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        sandbox = Sandbox(Path(tmp) / "sandbox", free_port(), CONTROLLER_KEY, market)
        sandbox.state_dir.mkdir(parents=True)
        daemon = Daemon(
            Path(tmp) / "state",
            free_port(),
            instance,
            "docker",
            {
                "FLEET_AGENT_CYCLE_SECONDS": "10",
                "FLEET_RECONCILE_INTERVAL_SECONDS": "2",
                "FLEET_STOP_GRACE_SECONDS": "10",
                "FLEET_PLATFORM_URL": sandbox.url,
                "FLEET_CONTROLLER_API_KEY": CONTROLLER_KEY,
                "FLEET_AGENT_OCI_RUNTIME": oci_runtime,
                **market,
            },
        )
        try:
            sandbox.start()
            daemon.start()
            pids = {"daemon": _pid(daemon.process), "sandbox": _pid(sandbox.service.process)}

            def read() -> dict:
                return machine.reading(pids, client, ("agents", f"fleet.instance={instance}"))

            have = 0
            for size in steps:
                try:
                    before = read()
                    seconds = _grow(daemon, size, timeout=1800)
                    spawn = machine.spent(before, read())
                except Overloaded as exc:
                    overloaded = f"{size} agents: not reached ({exc})"
                    print(overloaded, flush=True)
                    _shrink(daemon, have)  # the crash trials run on the last size that held
                    break
                time.sleep(SETTLE_SECONDS)
                cpu, host, cgroup, tick, shares = _measure(daemon, read, client, instance)
                measured.append(
                    Step(size, size - have, seconds, cpu, host, cgroup, tick, shares, spawn)
                )
                print(measured[-1], flush=True)
                have = size
            ours, reference = _crash_recovery(daemon, client, image, trials, runtime)
        finally:
            daemon.stop()
            sandbox.stop()
            remove_instance(instance)
    if measured[-1].added != last_added:
        floors = []  # the run stopped short: the floor before was for another size
    floors.append(floor(client, image, measured[-1].added, **runtime))
    on = oci_runtime or f"the engine's default, {client.info()['DefaultRuntime']}"
    client.close()
    anchor.append(machine.anchor())
    return _figures(measured, ours, reference, floors, overloaded, anchor, on)


def _figures(
    steps: list[Step],
    ours: list[float],
    reference: list[float],
    floors: list[tuple[float, dict[str, float]]],
    overloaded: str,
    anchor: list[float],
    oci_runtime: str,
) -> list[Figure]:
    figures = [
        Figure(
            "the machine's speed: a fixed Python workload, before and after the run",
            statistics.mean(anchor),
            "ms of CPU",
            "",
            None,
            " and ".join(f"{a:.0f} ms" for a in anchor) + " (less is faster)",
        )
    ]
    for s in steps:
        goal = s.added == s.agents >= SPAWN_GOAL_AGENTS  # the goal is a spawn from zero
        figures += [
            Figure(
                f"{s.agents} agents: +{s.added} heartbeating in",
                s.added_seconds,
                "s",
                f"≤ {SPAWN_GOAL_SECONDS:.0f} s" if goal else "",
                s.added_seconds <= SPAWN_GOAL_SECONDS if goal else None,
                f"{s.added / s.added_seconds:.1f} agents/s; agents on {oci_runtime}",
            ),
            Figure(
                f"{s.agents} agents: daemon CPU",
                100 * s.daemon_cpu,
                "% of a core",
                f"≤ {100 * CPU_GOAL:.0f} %",
                s.daemon_cpu <= CPU_GOAL,
                f"{s.daemon_cpu / CPU_GOAL:.2f}× the goal",
            ),
            Figure(
                f"{s.agents} agents: host memory per agent",
                s.host_mib,
                "MiB",
                f"≤ {MEMORY_GOAL_MIB:.0f} MiB",
                s.host_mib <= MEMORY_GOAL_MIB,
                f"{s.host_mib / MEMORY_GOAL_MIB:.2f}× the goal; cgroup mean {s.cgroup_mib:.1f} MiB",
            ),
            Figure(
                f"{s.agents} agents: reconcile tick (mean)",
                s.tick_seconds,
                "s",
                "",
                None,
                _tick_detail(s.ticks),
            ),
            Figure(
                f"{s.agents} agents: the machine's CPU",
                100 * sum(s.machine.values()),
                "% of a core",
                f"{100 * (os.cpu_count() or 1)} % in all",
                None,
                ", ".join(f"{part} {100 * share:.1f} %" for part, share in s.machine.items())
                + f"; {100 * s.machine['agents'] / s.agents:.2f} % per agent",
            ),
        ]
    last = steps[-1]
    median, reference_median = statistics.median(ours), statistics.median(reference)
    ratio = median / reference_median
    floor_seconds = statistics.mean(seconds for seconds, _ in floors)
    when = ("before ours", "after ours")[-len(floors) :]
    figures += [
        Figure(
            f"+{last.added} spawned, no orchestrator (the floor)",
            floor_seconds,
            "s",
            "",
            None,
            ", ".join(f"{w} {seconds:.0f} s" for w, (seconds, _) in zip(when, floors, strict=True))
            + f"; ours {last.added_seconds:.0f} s: {last.added_seconds / floor_seconds:.2f}×"
            + (" their mean" if len(floors) > 1 else " the floor"),
        ),
        _spent(f"+{last.added} spawned: the machine's CPU", last.spawn_cpu),
        *(
            _spent(f"+{last.added} spawned, the floor {w}: the machine's CPU", cpu)
            for w, (_, cpu) in zip(when, floors, strict=True)
        ),
        Figure(
            f"crash → replacement heartbeating, {last.agents} running (median)",
            median,
            "s",
            "≤ 1.5× Docker's",
            ratio <= 1.5,
            f"{ratio:.2f}× Docker's on-failure ({reference_median:.2f} s), {len(ours)} trials"
            " each, in turn",
        ),
    ]
    if overloaded:
        figures.append(Figure("the next step", 0, "", "", False, overloaded))
    return figures


def _spent(name: str, cpu: dict[str, float]) -> Figure:
    """The CPU seconds a spawn cost the machine, and each part's."""
    parts = ", ".join(f"{part} {s:.1f} s" for part, s in cpu.items() if part != machine.BUSY)
    return Figure(name, cpu[machine.BUSY], "s of CPU", "", None, parts)
