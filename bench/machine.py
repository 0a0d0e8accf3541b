"""Where a machine's CPU goes, read from `/proc` and the containers' cgroups (cgroup v1),
and how fast the machine is at the moment.

A reading holds each part's CPU seconds so far: processes by PID (the daemon, the
sandbox), containers by label (each one's cgroup `cpuacct.usage`), the engine (dockerd,
containerd and every shim) and the kernel's own threads (kthreadd's children, on this VM
mostly `kdamond`) process by process, and `busy`, the whole machine's non-idle time from
`/proc/stat`. Two readings give what each part used between them; what no part accounts
for is `other`: the short-lived `runc` processes that create and start containers, the
benchmark itself, interrupts.

A part made of many processes or containers counts each one on its own, so one that
ends between two readings takes only its own time between them along. Summed, it took
all its seconds since it began: with a kernel worker retired meanwhile, the kernel read
−7.5 % of a core at 100 idle agents (`bench-20261204T020041Z.json`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker

CGROUP_CPU = Path("/sys/fs/cgroup/cpuacct/docker")
ENGINE = ("dockerd", "containerd", "containerd-shim-runc-v2")
KTHREADD = 2  # the kernel threads' parent
BUSY = "busy"  # the key of the machine's own total in a reading


def stat(pid: int | str) -> tuple[int, float]:
    """A process's parent, and the CPU seconds it has used (utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> float:
    """A process's CPU seconds so far; this one's to the nanosecond (`/proc`'s are in clock
    ticks, 10 ms, more than a short benchmark of a few agents may spend)."""
    return time.process_time() if pid == os.getpid() else stat(pid)[1]


def _busy_seconds() -> float:
    """The machine's CPU seconds so far in every state but idle and iowait."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _host_cpu_seconds() -> dict[str, dict[str, float]]:
    """PID → CPU seconds, of the engine's processes and of the kernel's own threads."""
    used: dict[str, dict[str, float]] = {"engine": {}, "kernel": {}}
    for proc in (p for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            parent, seconds = stat(proc.name)
            if parent == KTHREADD or proc.name == str(KTHREADD):
                used["kernel"][proc.name] = seconds
            elif Path(os.fsdecode((proc / "cmdline").read_bytes().split(b"\0")[0])).name in ENGINE:
                used["engine"][proc.name] = seconds
        except (OSError, IndexError):
            continue  # gone meanwhile
    return used


def _containers_cpu_seconds(client: docker.DockerClient, label: str) -> dict[str, float]:
    """Container ID → CPU seconds its cgroup has used, for the containers with `label`."""
    used = {}
    for c in client.api.containers(filters={"label": label}):
        try:
            used[c["Id"]] = int((CGROUP_CPU / c["Id"] / "cpuacct.usage").read_text()) / 1e9
        except OSError:
            continue
    return used


def reading(
    pids: dict[str, int], client: docker.DockerClient, containers: tuple[str, str]
) -> dict[str, float | dict[str, float]]:
    """Every part's CPU seconds so far; `containers` names the part and its label."""
    part, label = containers
    return {
        **{name: _process_seconds(pid) for name, pid in pids.items()},
        part: _containers_cpu_seconds(client, label),
        **_host_cpu_seconds(),
        BUSY: _busy_seconds(),
    }


def shares(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Each part's share of one core between two readings of a steady fleet; a part of
    many only over those present in both (one started meanwhile has no reading to start
    from, and one ended meanwhile none to end at)."""
    found = {}
    for part, value in after.items():
        if part == BUSY:
            continue
        if isinstance(value, dict):
            value = sum(v - before[part][k] for k, v in value.items() if k in before[part])
        else:
            value -= before[part]
        found[part] = value / seconds
    return found


def spent(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds each part used between two readings taken around containers' births:
    a container or process absent from the first counts from zero, and one absent from
    the second is left out. `other` is what no part accounts for, and `busy` the
    machine's whole."""
    found = {}
    for part, value in after.items():
        if isinstance(value, dict):
            value = sum(v - before[part].get(k, 0.0) for k, v in value.items())
        else:
            value -= before[part]
        found[part] = value
    found["other"] = found[BUSY] - sum(v for part, v in found.items() if part != BUSY)
    return found


def anchor() -> float:
    """This machine's speed at the moment: milliseconds of CPU for a fixed Python workload
    (20,000 JSON round trips of a heartbeat-sized body), the best of three. The daemon's
    figures move with it from run to run, so each run reports it beside them."""
    position = {"symbol": "AAPL", "qty": 10, "market_value": 1900.0}
    beat = {"cycle": 123456, "equity": 1e5, "cash": 5e4, "positions": [position] * 3}
    times = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(20_000):
            json.loads(json.dumps(beat))
        times.append(time.process_time() - started)
    return 1000 * min(times)
