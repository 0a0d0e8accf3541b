"""What the operator's views cost the daemon as retired agents pile up.

A fleet that scales down and up (`fleet scale`, ramps) keeps every agent it retires: their
orders and timelines stay readable. The views that refresh on their own must not grow
with them. A real daemon (process runtime, SQLite) runs `agents` agents, and its store
holds `retired` retired ones besides, each with the `ORDERS_EACH` orders it placed; each
view is then asked `ROUNDS` times in a row:
- `fleet ls`, the real CLI (its seconds include its own start, about a second);
- the web overview's reload (`/fragments/overview`, every 3 s while a browser shows it);
- Prometheus' scrape (`/metrics`).

Each is read as the daemon's CPU per request (`/proc`, all its threads, so its own loops
count too) and the size of the answer, beside the same daemon with no retired agents
(the anchor, measured in the same run).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.figures import Figure
from bench.machine import stat
from orchestrator.lifecycle import Phase
from orchestrator.state.db import open_store
from orchestrator.state.tables import Agent, OrderRecord
from orchestrator.tools.harness import FLEET, Daemon, free_port

ROUNDS = 10
ORDERS_EACH = 50  # a million orders beside 20,000 retired agents
LONG_AGO = datetime(2026, 1, 5, tzinfo=UTC)


def _retire_many(url: str, count: int) -> None:
    """Put `count` agents retired long ago in the store at `url`, each with the
    `ORDERS_EACH` orders it placed before."""
    store = open_store(url)
    try:
        people = [{"name": f"gone-{i}", "strategy": "momentum"} for i in range(count)]
        made, _ = store.spawn("bench-views", people, lambda agent_id: f"h-{agent_id}", LONG_AGO)
        with store.engine.begin() as connection:
            connection.execute(
                sa.update(Agent.__table__)
                .where(Agent.__table__.c.id.in_([a.id for a in made]))
                .values(phase=Phase.RETIRED.value)
            )
            for first in range(0, count, 1_000):
                orders = [
                    _order(agent.id, n)
                    for agent in made[first : first + 1_000]
                    for n in range(ORDERS_EACH)
                ]
                connection.execute(sa.insert(OrderRecord.__table__), orders)
    finally:
        store.engine.dispose()


def _order(agent_id: str, n: int) -> dict:
    """The `n`th order of an agent retired long ago, filled or rejected."""
    placed = LONG_AGO + timedelta(hours=n)
    return {
        "agent_id": agent_id,
        "client_order_id": f"c-{n}",
        "order_id": f"{agent_id[:8]}-{n}",
        "symbol": "AAPL",
        "side": "buy" if n % 2 else "sell",
        "status": "filled" if n % 5 else "rejected",
        "qty": 1.0,
        "price": 100.0,
        "rationale": "momentum",
        "reject_reason": None,
        "placed_at": placed,
        "market_day": placed.strftime("%Y-%m-%d"),
        "recorded_at": placed,
    }


def _cost(daemon: Daemon, ask: Callable[[], int]) -> tuple[float, float, int]:
    """The daemon's CPU ms per request, the seconds per request and the answer's bytes,
    over `ROUNDS` requests made by `ask` (which returns the answer's bytes)."""
    assert daemon.process is not None
    _, cpu = stat(daemon.process.pid)
    started = time.perf_counter()
    size = sum(ask() for _ in range(ROUNDS))
    seconds = time.perf_counter() - started
    _, after = stat(daemon.process.pid)
    return 1000 * (after - cpu) / ROUNDS, seconds / ROUNDS, size // ROUNDS


def _views(folder: Path, agents: int, retired: int) -> dict[str, tuple[float, float, int]]:
    """Each view's cost with `retired` retired agents beside `agents` running ones."""
    url = f"sqlite:///{folder / 'fleet.db'}"
    if retired:
        _retire_many(url, retired)
    daemon = Daemon(
        folder / "state", free_port(), "bench-views", "process", {"FLEET_DATABASE_URL": url}
    )
    daemon.start()
    try:
        spawned = daemon.fleet("spawn", str(agents), "--wait")
        if spawned.returncode != 0:
            raise RuntimeError(f"fleet spawn failed: {spawned.stderr[-500:]}")
        web = httpx.Client(base_url=daemon.url, timeout=60)
        web.post("/login", data={"token": daemon.token, "next": "/"})

        def page(path: str) -> int:
            answer = web.get(path)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}")
            return len(answer.content)

        def ls() -> int:
            listed = subprocess.run(
                [*FLEET, "ls"], env=daemon.env, capture_output=True, timeout=120, check=True
            )
            return len(listed.stdout)

        try:
            return {
                "fleet ls": _cost(daemon, ls),
                "overview reload": _cost(daemon, lambda: page("/fragments/overview")),
                "metrics scrape": _cost(daemon, lambda: page("/metrics")),
            }
        finally:
            web.close()
    finally:
        daemon.stop()


def views(agents: int = 10, retired: int = 20_000) -> list[Figure]:
    """Each view's figures with `retired` retired agents, beside the same with none."""
    with tempfile.TemporaryDirectory(prefix="bench-views-") as empty:
        anchor = _views(Path(empty), agents, 0)
    with tempfile.TemporaryDirectory(prefix="bench-views-") as piled:
        grown = _views(Path(piled), agents, retired)
    figures = []
    for view, (cpu, seconds, size) in grown.items():
        was_cpu, was_seconds, was_size = anchor[view]
        figures.append(
            Figure(
                f"{view}: the daemon's CPU",
                cpu,
                "ms",
                detail=f"{agents} running, {retired:,} retired; {was_cpu:.0f} ms with none "
                f"retired; {seconds:.2f} s a request ({was_seconds:.2f} s), {size:,} bytes "
                f"({was_size:,})",
            )
        )
    return figures
