"""`fleet dashboard` and `fleet demo`: the fleet live on a terminal."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click
from rich.console import RenderableType

from orchestrator.cli._common import console, fail, operator, population_body
from orchestrator.cli.client import OperatorClient, OperatorError
from orchestrator.cli.format import format_dashboard, format_scaled, problem
from orchestrator.lifecycle import NOT_RETIRED
from orchestrator.settings import Settings

# Ctrl-C, `timeout make demo`, a closed terminal: each stops the demo, and cleans up
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A dashboard frame's lines besides the agents': the summary's panel (6), the table's
# header, the line counting the agents that did not fit, and the latest events' panel (10).
# Only the agents that fit are asked for and drawn: at 1,000 agents the whole list was
# 690 KB a frame, and the CLI spent 0.67 s of CPU a frame on it (now 24 KB and 0.03 s).
FRAME_LINES = 18


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
def dashboard(interval: float) -> None:
    """A live full-screen view of the fleet; Ctrl-C leaves it."""
    with operator() as api:
        watch_dashboard(api, interval)


def fitting(agents: list[dict], room: int) -> list[dict]:
    """The first of `agents` whose rows, and the lines explaining their problems, fit in
    `room` lines of the terminal."""
    used = 0
    for count, agent in enumerate(agents):
        used += 2 if problem(agent) else 1
        if used > room:
            return agents[:count]
    return agents


def watch_dashboard(api: OperatorClient, interval: float, note: str = "") -> None:
    """Refresh the dashboard every `interval` seconds until Ctrl-C; `note` stays on top."""
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    def frame() -> RenderableType:
        summary = api.fleet()
        room = max(console.height - FRAME_LINES - (note.count("\n") + 1 if note else 0), 3)
        shown = fitting(api.agents(NOT_RETIRED, worst=room), room)
        listed = sum(n for phase, n in summary["by_phase"].items() if phase in NOT_RETIRED)
        view = format_dashboard(summary, shown, api.events(8), hidden=listed - len(shown))
        return Group(Text(note, style="dim"), view) if note else view

    try:
        with Live(frame(), console=console, screen=True, auto_refresh=False) as view:
            while True:
                time.sleep(interval)
                view.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return


@click.command()
@click.option("--agents", type=click.IntRange(1, 200), default=5, show_default=True)
@click.option(
    "--runtime",
    type=click.Choice(["process", "docker"]),
    default="process",
    show_default=True,
    help="Agents as local processes, or one container each (needs `make image`).",
)
@click.option(
    "--speed",
    type=click.FloatRange(1, 10_000),
    default=4320,
    show_default=True,
    help="Market seconds per wall second (4320: three market days a minute).",
)
@click.option(
    "--population",
    default="news-hounds",
    show_default=True,
    help="An archetype or a population file: who the agents are.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8787, show_default=True)
@click.option("--sandbox-port", type=click.IntRange(1, 65535), default=8788, show_default=True)
@click.option(
    "--for",
    "duration",
    type=click.FloatRange(min=1),
    default=None,
    help="Stop after this many seconds instead of at Ctrl-C.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=(
        "Keep the demo's state (store, logs, sandbox) here instead of deleting it; a folder "
        "an earlier demo kept brings its agents back, as many as --agents asks, and its "
        "market goes on from where that demo stopped."
    ),
)
def demo(
    agents: int,
    runtime: str,
    speed: float,
    population: str,
    port: int,
    sandbox_port: int,
    duration: float | None,
    state_dir: Path | None,
) -> None:
    """The sandbox platform, the daemon and AGENTS trading agents, in one command."""
    from orchestrator.tools.demo import DemoError, running_demo

    for signum in STOPS:
        signal.signal(signum, _stop)

    try:
        with running_demo(runtime, speed, port, sandbox_port, state_dir) as fleet:
            settings = Settings(
                _env_file=None,
                state_dir=fleet.state_dir,
                port=port,
                operator_token=fleet.token,
            )
            api = OperatorClient(settings)
            try:
                # the fleet's size, not more agents: a kept state dir's agents come back
                scaled = api.scale(agents, population=population_body(population))
                shell = f"FLEET_STATE_DIR={fleet.state_dir} FLEET_PORT={port} fleet ls"
                lines = [
                    f"dashboard:  {fleet.url}/  (operator token {fleet.token})",
                    f"platform:   {fleet.platform_url}  ({runtime} runtime, market {speed:g}x "
                    f"from {fleet.market_from:%Y-%m-%d %H:%M} UTC)",
                    f"CLI:        {shell}",
                ]
                click.echo(format_scaled(scaled))
                click.echo("\n".join(lines))
                _run_demo(api, duration, "\n".join(lines))
                click.echo("stopping")
            except OperatorError as exc:
                fail(str(exc))
            finally:
                api.close()
    except DemoError as exc:
        fail(str(exc))
    if fleet.filled is not None:
        click.echo(f"{fleet.filled} order(s) filled on the sandbox")
    click.echo("demo stopped; nothing left running")


def _stop(_signum: int, _frame: object) -> None:
    """Ctrl-C, SIGTERM or SIGHUP: the demo stops everything it started on its way out.
    Only the first counts (`uv run` relays a signal it gets to the demo, and a process
    group's signal then arrives twice; a hang-up brings a SIGTERM with it): the clean-up
    is not interrupted."""
    for signum in STOPS:
        signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt


def _run_demo(api: OperatorClient, duration: float | None, note: str) -> None:
    """The live dashboard on a terminal (until Ctrl-C or `duration`), `note` on top of it;
    else a quiet wait."""
    if sys.stdout.isatty() and duration is None:
        watch_dashboard(api, 1.0, note)
        return
    deadline = time.monotonic() + (duration if duration is not None else float("inf"))
    try:
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
    except KeyboardInterrupt:
        return
