"""Run benchmarks, print a table of figures against their DESIGN §6 budgets, write JSON.

uv run python -m bench                      # every benchmark
uv run python -m bench gateway heartbeats   # some of them, by name (`BENCHMARKS`)
uv run python -m bench fleet --agents 50    # a fleet of 50 on the Docker runtime
uv run python -m bench swarm --agents 100   # Swarm beside Docker, on a two-node Swarm
uv run python -m bench scale --agents 1000  # one daemon's fleet grown to 1,000 in steps
uv run python -m bench backup --agents 300  # fleet backup and restore of 300 agents' day
uv run python -m bench views --retired 20000  # operators' views beside 20,000 retired agents
uv run python -m bench curves --agents 1000  # the overview's curves over 3 days of samples
uv run python -m bench soak --agents 300 --minutes 60 --chaos  # faults for an hour
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import docker
from rich.console import Console
from rich.table import Table

from bench.backup import backup
from bench.curves import curves
from bench.docker_fleet import fleet
from bench.figures import Figure
from bench.gateway import gateway
from bench.heartbeats import heartbeats
from bench.scale import STEPS, scale
from bench.sentiment import sentiment
from bench.simulate import simulate
from bench.soak import FAULTS, soak
from bench.soak_report import figures as soak_figures
from bench.soak_report import plot
from bench.supervision import supervision
from bench.swarm import swarm
from bench.views import views
from orchestrator.runtime.preflight import oci_runtimes

BENCHMARKS = (
    "backup",
    "curves",
    "fleet",
    "gateway",
    "heartbeats",
    "sentiment",
    "simulate",
    "supervision",
    "swarm",
    "scale",
    "soak",
    "views",
)
DOCS = Path(__file__).resolve().parents[1] / "docs"

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


def _soak(args: argparse.Namespace) -> list[Figure]:
    """The soak, its figures, and its curves (docs/soak.png unless `--curves`)."""
    result = soak(
        args.agents,
        args.minutes,
        chaos=args.chaos,
        faults=[
            f
            for f in ((*FAULTS, "engine_restart") if args.engine_restart else FAULTS)
            if f not in args.without
        ],
        fault_every=args.fault_every,
        cycle=args.cycle,
        time_scale=args.time_scale,
        database_url=args.database_url,
        on_sample=lambda s: print(s, flush=True),
    )
    plot(result, args.curves)
    print(f"curves written to {args.curves}")
    return soak_figures(result)


def _engine_runtimes() -> list[str]:
    """The OCI runtimes the Docker engine knows, by name."""
    client = docker.from_env(version="auto")
    try:
        return oci_runtimes(client.info())
    finally:
        client.close()


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
        "--agents",
        type=int,
        default=50,
        help="fleet size to spawn (fleet, swarm, scale) or to fill the store with (backup, curves)",
    )
    parser.add_argument(
        "--steps",
        default=None,
        help="scale: comma-separated fleet sizes up to --agents (default 100,300,500,...)",
    )
    parser.add_argument(
        "--idle",
        action="store_true",
        help="scale: keep the market closed, so the fleet heartbeats and does not trade",
    )
    parser.add_argument(
        "--oci-runtime",
        default="",
        metavar="NAME",
        help="scale: the agents' OCI runtime, as the engine names it, for ours, the floor and "
        "Docker's reference (default: the engine's default)",
    )
    parser.add_argument(
        "--retired", type=int, default=20_000, help="views: retired agents in the store"
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="soak: how long")
    parser.add_argument("--chaos", action="store_true", help="soak: inject faults")
    parser.add_argument("--fault-every", type=float, default=10.0, help="soak: seconds apart")
    parser.add_argument("--cycle", type=float, default=5.0, help="soak: agents' cycle, seconds")
    parser.add_argument(
        "--time-scale", type=float, default=4320.0, help="soak: market seconds per wall second"
    )
    parser.add_argument(
        "--database-url", default=None, help="soak: a PostgreSQL store (its outage is a fault)"
    )
    parser.add_argument(
        "--engine-restart",
        action="store_true",
        help="soak: restart the Docker engine too (stops every container on the machine)",
    )
    parser.add_argument(
        "--curves",
        type=Path,
        default=DOCS / "soak.png",
        help="soak: where the curves' PNG goes (default docs/soak.png)",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=FAULTS,
        metavar="FAULT",
        help=f"soak: leave this fault out of the menu (repeatable; one of {', '.join(FAULTS)})",
    )
    args = parser.parse_args()
    if not args.curves.parent.is_dir():  # found out before the soak, not after its hour
        parser.error(f"--curves: no folder {args.curves.parent} to write the PNG in")
    if args.chaos and set(FAULTS) <= set(args.without) and not args.engine_restart:
        parser.error("--without: with --chaos, leave at least one fault in the menu")
    if args.oci_runtime and args.oci_runtime not in (known := _engine_runtimes()):
        parser.error(
            f"--oci-runtime: the engine has no runtime {args.oci_runtime!r} (it has "
            f"{', '.join(known)})"
        )
    runs = {
        "backup": lambda: backup(args.agents),
        "curves": lambda: curves(args.agents),
        "fleet": lambda: fleet(args.agents),
        "gateway": gateway,
        "heartbeats": heartbeats,
        "sentiment": sentiment,
        "simulate": simulate,
        "supervision": supervision,
        "swarm": lambda: swarm(args.agents),
        "scale": lambda: scale(
            _steps(args.steps, args.agents), idle=args.idle, oci_runtime=args.oci_runtime
        ),
        "soak": lambda: _soak(args),
        "views": lambda: views(retired=args.retired),
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
