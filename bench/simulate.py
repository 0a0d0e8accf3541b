"""How long `fleet simulate` takes for 50 agents × 20 trading days (in-process), and the
follow graph its agents grow."""

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
    social = result.social
    seen = social["decisions_with_social_input"] / max(1, social["decisions"])
    graph = (
        f"most followed {social['most_followed']}, median {social['median_followers']}, "
        f"the top tenth {social['top_decile_share']:.0%} of follows"
    )
    return [
        Figure("simulated follows, 50 agents × 20 days", social["follows"], "", detail=graph),
        Figure("decisions that saw followed accounts' trades", seen, "", detail="share"),
        Figure(
            "fleet simulate, 50 agents × 20 days",
            seconds,
            "s",
            "< 60 s",
            seconds < 60,
            f"{result.steps} hourly steps, {orders} orders",
        ),
    ]
