"""What `fleet backup` and `fleet restore` cost as the store grows: each command's peak
memory (its process's maximum resident set) and seconds, run as an operator runs them,
on a store of `agents` agents with a day of history each, beside the same two commands
on the store of a fleet with no history (the anchor, measured in the same run).

A day of history is what the fleet writes at the defaults: an equity sample a minute
(`FLEET_EQUITY_SAMPLE_SECONDS`), a decision record of about a kilobyte every ten minutes
and a few timeline entries. Both stores are SQLite files in a temporary folder; the
restore goes into a fresh state dir and store, as `docs/operations.md` says to.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.figures import Figure
from orchestrator import keys
from orchestrator.state.db import open_store
from orchestrator.state.store import Store
from orchestrator.state.tables import AgentEvent, DecisionRecord, EquitySample
from orchestrator.tools.harness import FLEET, fleet_env

DAY = datetime(2026, 12, 1, tzinfo=UTC)
SAMPLES_A_DAY = 1_440
DECISIONS_A_DAY = 144
EVENTS_A_DAY = 6
HISTORY = (EquitySample, DecisionRecord, AgentEvent)
INSTANCE = "bench-backup"
POLL = 0.02
CHUNK = 20_000  # rows inserted at a time while the store is filled


def _record(draw: random.Random) -> str:
    """A decision record's JSON of about a kilobyte: headlines by id with their scores,
    the prices looked at, a proposal; as hard to compress as a real one."""
    return json.dumps(
        {
            "headlines": [
                [draw.randbytes(8).hex(), round(draw.uniform(-1, 1), 4)] for _ in range(12)
            ],
            "prices": {f"S{n}": round(draw.uniform(5, 500), 2) for n in range(30)},
            "proposal": {"side": "buy", "conviction": round(draw.random(), 3)},
        }
    )


def _fill(store: Store, agents: int, history: bool) -> None:
    """Spawn `agents` agents, with a day of history each if `history`."""
    people = [{"name": f"b{i}", "strategy": "momentum"} for i in range(agents)]
    spawned, _ = store.spawn("bench-backup", people, lambda agent_id: f"h-{agent_id}", DAY)
    tables = {
        EquitySample: lambda a, i: {
            "agent_id": a,
            "at": DAY + timedelta(minutes=i),
            "equity": 100_000.0 + i,
        },
        DecisionRecord: lambda a, i: {
            "agent_id": a,
            "cycle": i,
            "decided_at": DAY + timedelta(minutes=10 * i),
            "recorded_at": DAY + timedelta(minutes=10 * i),
            "strategy": "momentum",
            "orders": i % 2,
            "social": i % 3,
            "record": _record(random.Random(i)),
        },
        AgentEvent: lambda a, i: {
            "agent_id": a,
            "at": DAY + timedelta(hours=i),
            "kind": "heartbeat_lost",
            "message": "no heartbeat for 90s",
        },
    }
    per_agent = dict(zip(HISTORY, (SAMPLES_A_DAY, DECISIONS_A_DAY, EVENTS_A_DAY), strict=True))
    if not history:
        return
    with store.engine.begin() as connection:
        for table, row in tables.items():
            rows = [row(a.id, i) for a in spawned for i in range(per_agent[table])]
            for start in range(0, len(rows), CHUNK):
                connection.execute(sa.insert(table.__table__), rows[start : start + CHUNK])


def _history(store: Store) -> int:
    """The rows of the tables that grow with time."""
    with store.engine.connect() as connection:
        return sum(
            connection.execute(sa.select(sa.func.count()).select_from(t.__table__)).scalar()
            for t in HISTORY
        )


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a `fleet` command; its peak resident memory in MB and its seconds. The peak is
    the process's own high-water mark (VmHWM) read as it runs, every `POLL` seconds:
    the rusage a parent reads also counts what the child held before its exec."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*FLEET, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak_kib = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, _high_water_kib(process.pid))
        time.sleep(POLL)
    seconds = time.perf_counter() - started
    error = process.stderr.read().decode()
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"fleet {args[0]} failed: {error[-500:]}")
    return peak_kib / 1024, seconds


def _high_water_kib(pid: int) -> int:
    """A running process's peak resident memory so far, in KiB (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _round_trip(folder: Path, agents: int, history: bool) -> dict[str, float]:
    """Back up a filled store and restore it elsewhere; what each command cost."""
    source = folder / "source"
    source.mkdir()
    store = open_store(f"sqlite:///{source / 'fleet.db'}")
    try:
        keys.instance_key(source)
        _fill(store, agents, history)
        rows = _history(store)
    finally:
        store.engine.dispose()
    path = folder / "fleet.backup"
    settings = {"FLEET_INSTANCE": INSTANCE, "FLEET_STATE_DIR": str(source)}
    env = fleet_env(**settings, FLEET_DATABASE_URL=f"sqlite:///{source / 'fleet.db'}")
    backup_mb, backup_s = _run(["backup", str(path)], env)
    target = folder / "target"
    target.mkdir()
    settings["FLEET_STATE_DIR"] = str(target)
    env = fleet_env(**settings, FLEET_DATABASE_URL=f"sqlite:///{target / 'fleet.db'}")
    restore_mb, restore_s = _run(["restore", str(path)], env)
    restored = open_store(f"sqlite:///{target / 'fleet.db'}")
    try:
        if (found := _history(restored)) != rows:
            raise RuntimeError(f"the restore holds {found} rows of history, not {rows}")
    finally:
        restored.engine.dispose()
    return {
        "rows": rows,
        "file_mb": path.stat().st_size / 1e6,
        "backup_mb": backup_mb,
        "backup_s": backup_s,
        "restore_mb": restore_mb,
        "restore_s": restore_s,
    }


def backup(agents: int = 300) -> list[Figure]:
    """The figures: both commands on a grown store, beside both on an empty one."""
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as empty_dir:
        anchor = _round_trip(Path(empty_dir), agents, history=False)
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as grown_dir:
        grown = _round_trip(Path(grown_dir), agents, history=True)
    history = (
        f"{agents} agents, a day each: {grown['rows']:,} rows, a {grown['file_mb']:.1f} MB file"
    )
    figures = []
    for command in ("backup", "restore"):
        figures += [
            Figure(
                f"fleet {command}: peak memory",
                grown[f"{command}_mb"],
                "MB",
                detail=f"{history}; {anchor[f'{command}_mb']:.0f} MB with no history",
            ),
            Figure(
                f"fleet {command}: seconds",
                grown[f"{command}_s"],
                "s",
                detail=f"{history}; {anchor[f'{command}_s']:.1f} s with no history",
            ),
        ]
    return figures
