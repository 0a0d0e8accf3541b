"""How long `fleet simulate` takes for 50 agents × 20 trading days (in-process)."""

from __future__ import annotations

import time

from bench.figures import Figure
from orchestrator.settings import Settings
from orchestrator.tools.simulate import simulate as run
from personalities import ARCHETYPES


def simulate() -> list[Figure]:
    """Wall time of a 50-agent, 20-day simulation, and how much it traded."""
    start = time.perf_counter()
    result = run(50, 20, 7, ARCHETYPES["balanced"], Settings(_env_file=None).risk_limits())
    seconds = time.perf_counter() - start
    orders = sum(a["orders"] for a in result.agents)
    return [
        Figure(
            "fleet simulate, 50 agents × 20 days",
            seconds,
            "s",
            "< 60 s",
            seconds < 60,
            f"{result.steps} hourly steps, {orders} orders",
        )
    ]
