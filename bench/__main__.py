"""Run benchmarks, print a table of figures against their DESIGN §6 budgets, write JSON.

uv run python -m bench                    # every benchmark
uv run python -m bench fleet --agents 50  # fleet, gateway, sentiment, simulate, supervision
uv run python -m bench swarm --agents 100 # Swarm beside Docker, on a two-node Swarm
uv run python -m bench scale --agents 1000 # one daemon's fleet grown to 1,000 in steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.docker_fleet import fleet
from bench.figures import Figure
from bench.gateway import gateway
from bench.scale import STEPS, scale
from bench.sentiment import sentiment
from bench.simulate import simulate
from bench.supervision import supervision
from bench.swarm import swarm

BENCHMARKS = ("fleet", "gateway", "sentiment", "simulate", "supervision", "swarm", "scale")

RESULTS = Path(__file__).with_name("results")


def format_figures(figures: list[Figure]) -> Table:
    """The printed table."""
    table = Table(title="agent-fleet benchmarks", header_style="bold")
    for column in ("figure", "value", "budget", "within", "detail"):
        table.add_column(column)
    for f in figures:
        within = "-" if f.within_budget is None else ("yes" if f.within_budget else "NO")
        table.add_row(f.name, f"{f.value:.4g} {f.unit}", f.budget or "-", within, f.detail)
    return table


def _steps(raw: str | None, agents: int) -> list[int]:
    """The scale benchmark's fleet sizes: increasing, ending at `agents`."""
    if raw is None:
        return [s for s in STEPS if s < agents] + [agents]
    try:
        steps = [int(s) for s in raw.split(",")]
    except ValueError:
        raise SystemExit(f"--steps: give comma-separated whole numbers, not {raw!r}") from None
    if any(b <= a for a, b in zip([0, *steps], steps, strict=False)) or steps[-1] != agents:
        raise SystemExit(f"--steps must increase from above 0 up to --agents ({agents})")
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        choices=BENCHMARKS,
        default=[],
        help="benchmarks to run (default: all)",
    )
    parser.add_argument(
        "--agents", type=int, default=50, help="fleet size to spawn (fleet, swarm, scale)"
    )
    parser.add_argument(
        "--steps",
        default=None,
        help="scale: comma-separated fleet sizes up to --agents (default 100,300,500,...)",
    )
    args = parser.parse_args()
    runs = {
        "fleet": lambda: fleet(args.agents),
        "gateway": gateway,
        "sentiment": sentiment,
        "simulate": simulate,
        "supervision": supervision,
        "swarm": lambda: swarm(args.agents),
        "scale": lambda: scale(_steps(args.steps, args.agents)),
    }
    figures: list[Figure] = []
    for name in args.names or BENCHMARKS:
        figures.extend(runs[name]())
    Console().print(format_figures(figures))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "at": stamp,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "figures": [f.__dict__ for f in figures],
            },
            indent=2,
        )
    )
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
