"""What one refresh of the overview's fleet curves costs as equity samples pile up.

The overview shows the fleet's equity and P&L over the last day, read again every
`CURVES_SECONDS` while a browser shows it. A SQLite store gets `agents` agents with an
equity sample a minute (`FLEET_EQUITY_SAMPLE_SECONDS`' default) for `days` days; the
refresh is then timed as the daemon does it (`FleetSummary.curves`: the day's thinned
samples, the agents present, the curves), in process, three times. The anchor is the same
fleet with one day of samples, in the same run: a refresh must cost what a day costs,
however long the store has kept them.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.figures import Figure
from orchestrator.operations.views import CURVE_STEPS, fleet_curves
from orchestrator.state.db import open_store
from orchestrator.state.equity import EquityBook
from orchestrator.state.store import Store
from orchestrator.state.tables import EquitySample

NOW = datetime(2026, 12, 10, tzinfo=UTC)
WINDOW = timedelta(hours=24)
TIMES = 3


def _refresh(agents: int, days: float) -> tuple[float, float, int]:
    """The median seconds of one refresh, the peak MB of Python's allocations in another,
    and how many samples the store holds."""
    with tempfile.TemporaryDirectory(prefix="bench-curves-") as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'fleet.db'}")
        try:
            people = [{"name": f"c{i}", "strategy": "momentum"} for i in range(agents)]
            spawned, _ = store.spawn("bench-curves", people, lambda a: f"h-{a}", NOW - WINDOW)
            minutes = int(days * 24 * 60)
            with store.engine.begin() as connection:
                for minute in range(0, minutes, 10):
                    rows = [
                        {"agent_id": a.id, "at": NOW - timedelta(minutes=minute + k), "equity": 1e5}
                        for k in range(10)
                        for a in spawned
                    ]
                    connection.execute(sa.insert(EquitySample.__table__), rows)
            seconds = []
            for _ in range(TIMES):
                started = time.perf_counter()
                _read(store)
                seconds.append(time.perf_counter() - started)
            tracemalloc.start()  # apart: it slows what it traces
            _read(store)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
        finally:
            store.engine.dispose()
    return sorted(seconds)[TIMES // 2], peak, agents * minutes


def _read(store: Store) -> None:
    """One refresh, as `FleetSummary.curves` makes it."""
    samples = EquityBook(store).samples(NOW - WINDOW, NOW, CURVE_STEPS)
    fleet_curves(samples, store.present(NOW - WINDOW))


def curves(agents: int = 1_000, days: float = 3.0) -> list[Figure]:
    """One refresh of the fleet's curves over `days` of samples, beside one day's."""
    anchor_seconds, anchor_mb, anchor_rows = _refresh(agents, 1.0)
    seconds, mb, rows = _refresh(agents, days)
    detail = f"{agents} agents, {rows:,} samples ({days:g} days); one day's {anchor_rows:,}: "
    return [
        Figure("overview curves refresh", seconds, "s", detail=f"{detail}{anchor_seconds:.2f} s"),
        Figure(
            "overview curves refresh: peak Python memory",
            mb,
            "MB",
            detail=f"{detail}{anchor_mb:.0f} MB",
        ),
    ]
