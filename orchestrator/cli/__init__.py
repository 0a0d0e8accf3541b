"""The `fleet` command. Commands are thin: parse, call the operator API, print a format_*.

Exit codes: 0 success; 1 the operation failed or the daemon is not running; 2 bad usage
or bad input (an invalid argument or setting). Errors are one line on stderr, never a
traceback and never a secret.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import click
from rich.console import RenderableType
from rich.markup import escape

from orchestrator.cli._common import (
    EXIT_USAGE,
    console,
    fail,
    load_population_file,
    load_settings,
    operator,
    population_body,
    retire_order_option,
    sampling_options,
)
from orchestrator.cli.client import OperatorClient, OperatorError
from orchestrator.cli.format import (
    format_agent,
    format_agents,
    format_dashboard,
    format_personalities,
    format_retired,
    format_scaled,
    format_simulation,
    format_spawned,
)
from orchestrator.cli.schedule import report, schedule
from orchestrator.phases import Phase
from orchestrator.settings import Settings
from personalities import STRATEGIES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Run and operate a fleet of autonomous paper-trading agents."""


@cli.command()
def up() -> None:
    """Start the orchestrator daemon in the foreground."""
    from orchestrator.daemon import serve
    from orchestrator.logs import setup_logging
    from orchestrator.store import StoreUnavailable, check_store

    settings = load_settings()
    setup_logging(settings.log_format)
    try:
        check_store(settings.database_url)
    except StoreUnavailable as exc:
        fail(str(exc))
    serve(settings)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("count", type=click.IntRange(min=1, max=1000))
@sampling_options
@click.option("--wait", is_flag=True, help="Show progress until every new agent heartbeats.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="Seconds --wait waits.",
)
def spawn(
    count: int, seed: int | None, population: str, strategy: str | None, wait: bool, timeout: float
) -> None:
    """Create COUNT new agents with sampled personalities."""
    chosen = population_body(population)
    key = secrets.token_hex(16)  # one key per invocation: the client's retries reuse it
    with operator() as api:
        result = api.spawn(count, key, seed=seed, population=chosen, strategy=strategy)
        console.print(format_spawned(result))
        if wait:
            _wait_running(api, [a["id"] for a in result["agents"]], timeout)


def _wait_running(api: OperatorClient, ids: list[str], timeout: float) -> None:
    """A progress bar until the agents heartbeat; fails on a failed agent or the timeout."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    wanted = set(ids)
    deadline = time.monotonic() + timeout
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("agents heartbeating", total=len(wanted))
        while True:
            agents = [a for a in api.agents() if a["id"] in wanted]
            running = [a for a in agents if a["phase"] == Phase.RUNNING]
            failed = [a for a in agents if a["phase"] in (Phase.FAILED, Phase.CRASHLOOP)]
            progress.update(bar, completed=len(running))
            if failed:
                reasons = "; ".join(f"{a['name']}: {a.get('reason') or a['phase']}" for a in failed)
                fail(f"{len(failed)} agent(s) did not come up: {reasons}")
            if len(running) == len(wanted):
                return
            if time.monotonic() >= deadline:
                fail(
                    f"{len(wanted) - len(running)} agent(s) not heartbeating after "
                    f"{timeout:.0f}s; see `fleet ls`"
                )
            time.sleep(0.5)


@cli.command()
@click.argument("size", type=click.IntRange(min=0, max=1000))
@retire_order_option
@sampling_options
def scale(
    size: int, retire_order: str, seed: int | None, population: str, strategy: str | None
) -> None:
    """Make the fleet SIZE agents: spawn the missing ones or retire the surplus."""
    with operator() as api:
        result = api.scale(
            size,
            retire=retire_order,
            seed=seed,
            population=population_body(population),
            strategy=strategy,
        )
    console.print(format_scaled(result))


@cli.command()
def pause() -> None:
    """Kill switch: no agent submits an order until `fleet resume`."""
    with operator() as api:
        result = api.pause(True)
    state = "paused" if result["changed"] else "already paused"
    console.print(f"fleet {state}: agents submit nothing from their next heartbeat on")


@cli.command()
def resume() -> None:
    """Lift the kill switch: agents trade again."""
    with operator() as api:
        result = api.pause(False)
    console.print("fleet resumed" if result["changed"] else "fleet was not paused")


@cli.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--phase",
    "phases",
    multiple=True,
    type=click.Choice([p.value for p in Phase]),
    help="Only agents in this phase (repeatable).",
)
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    type=click.Choice(STRATEGIES),
    help="Only agents with this strategy (repeatable).",
)
def ls(as_json: bool, phases: tuple[str, ...], strategies: tuple[str, ...]) -> None:
    """List the agents: health, uptime, equity, P&L and orders today."""
    with operator() as api:
        agents = api.agents(phases, strategies)
    if as_json:
        click.echo(json.dumps(agents, indent=2))
    else:
        console.print(format_agents(agents))


@cli.command()
@click.argument("agent")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def show(agent: str, as_json: bool) -> None:
    """One AGENT (name, id or unique id prefix): health, personality, orders, timeline."""
    with operator() as api:
        detail = api.agent(agent, orders=True)
    if as_json:
        click.echo(json.dumps(detail, indent=2))
    else:
        console.print(format_agent(detail))


@cli.command()
@click.argument("agent")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output.")
@click.option(
    "--tail",
    "-n",
    type=click.IntRange(min=0),
    default=None,
    help="Only the last N lines [default: all].",
)
def logs(agent: str, follow: bool, tail: int | None) -> None:
    """The output of AGENT's workload (name, id or unique id prefix)."""
    out = click.get_binary_stream("stdout")
    with operator() as api:
        try:
            for chunk in api.logs(agent, tail, follow):
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            return


@cli.command()
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


def watch_dashboard(api: OperatorClient, interval: float) -> None:
    """Refresh the dashboard every `interval` seconds until Ctrl-C."""
    from rich.live import Live

    from orchestrator.views import problems_first

    def frame() -> RenderableType:
        agents = api.agents()
        live = [a for a in agents if a["phase"] != Phase.RETIRED] or agents
        return format_dashboard(api.fleet(), problems_first(live), api.events(8))

    try:
        with Live(frame(), console=console, screen=True, auto_refresh=False) as view:
            while True:
                time.sleep(interval)
                view.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return


@cli.command()
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
    help="Keep the demo's state (store, logs, sandbox) here instead of deleting it.",
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
    from orchestrator.demo import DemoError, running_demo

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
                spawned = api.spawn(
                    agents, secrets.token_hex(16), population=population_body(population)
                )
                click.echo(format_spawned(spawned))
                click.echo(f"dashboard:  {fleet.url}/  (operator token {fleet.token})")
                click.echo(f"platform:   {fleet.platform_url}  ({runtime} runtime, {speed:g}x)")
                _run_demo(api, duration)
                filled = sum(a.get("orders_filled") or 0 for a in api.agents())
                click.echo(f"stopping: {filled} order(s) filled on the sandbox")
            except OperatorError as exc:
                fail(str(exc))
            finally:
                api.close()
    except DemoError as exc:
        fail(str(exc))
    click.echo("demo stopped; nothing left running")


def _run_demo(api: OperatorClient, duration: float | None) -> None:
    """The live dashboard on a terminal (until Ctrl-C or `duration`), else a quiet wait."""
    if sys.stdout.isatty() and duration is None:
        watch_dashboard(api, 1.0)
        return
    deadline = time.monotonic() + (duration if duration is not None else float("inf"))
    try:
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
    except KeyboardInterrupt:
        return


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show_config(as_json: bool) -> None:
    """The effective settings (environment and .env), secrets masked."""
    from orchestrator.settings import effective

    values = effective(load_settings())
    if as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    for name, value in values.items():
        click.echo(f"{name}={'' if value is None else value}")


@cli.command()
def doctor() -> None:
    """Check everything the fleet needs, one line per check with a fix."""
    from orchestrator.doctor import diagnose

    marks = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}
    failed = 0
    for check in diagnose(load_settings()):
        failed += check.status == "fail"
        hint = f"  [dim]→ {escape(check.hint)}[/]" if check.hint and check.status != "ok" else ""
        console.print(f"{marks[check.status]} {check.name:<14} {escape(check.detail)}{hint}")
    if failed:
        fail(f"{failed} check(s) failed")


@cli.command()
@click.argument("agents", nargs=-1)
@click.option("--all", "retire_all", is_flag=True, help="Retire every agent that is not over.")
@click.option(
    "--flatten",
    is_flag=True,
    help="Sell the agents' positions before they stop (FLEET_FLATTEN_DEADLINE_SECONDS).",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until the agents are retired."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=120,
    show_default=True,
    help="Seconds to wait.",
)
def retire(
    agents: tuple[str, ...], retire_all: bool, flatten: bool, wait: bool, timeout: float
) -> None:
    """Retire AGENTS (names, ids or unique id prefixes), or --all. Positions stay open
    unless --flatten."""
    if bool(agents) == retire_all:
        fail("name the agents to retire, or pass --all (not both)", EXIT_USAGE)
    with operator() as api:
        if retire_all:
            live = set(Phase) - {Phase.RETIRED, Phase.FAILED}
            refs = [a["id"] for a in api.agents() if a["phase"] in live]
        else:
            refs = [api.agent(ref)["id"] for ref in agents]  # all resolve before any retires
        retired = [api.retire(ref, flatten) for ref in refs]
        for agent in retired:
            console.print(f"retiring {agent['name']} ({agent['id'][:8]})")
        if wait:
            _wait_retired(api, [a["id"] for a in retired], timeout)


def _wait_retired(api: OperatorClient, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for agent_id in list(pending):
            agent = api.agent(agent_id)
            if agent["phase"] == Phase.RETIRED:
                pending.discard(agent_id)
                console.print(format_retired(agent))
        if pending:
            time.sleep(0.5)
    if pending:
        fail(f"{len(pending)} agent(s) not retired after {timeout:.0f}s; see `fleet ls`")


@cli.command()
@click.option("--host", default=None, help="Address to bind [default: FLEET_SANDBOX_HOST].")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port [default: FLEET_SANDBOX_PORT].",
)
def sandbox(host: str | None, port: int | None) -> None:
    """Run the sandbox trading platform (paper fills on the simulated market)."""
    import uvicorn

    from feeds.clock import MarketClock
    from orchestrator import keys
    from sandbox.app import SandboxConfig, create_sandbox_app

    settings = load_settings()
    if settings.controller_api_key is None:
        fail("FLEET_CONTROLLER_API_KEY is not set: the sandbox needs a controller key", EXIT_USAGE)
    secret = keys.derived_key(keys.instance_key(settings.state_dir), "sandbox")
    config = SandboxConfig(
        database_url=settings.sandbox_database_url,
        controller_key=settings.controller_api_key.get_secret_value(),
        secret=secret,
        market_seed=settings.market_seed,
        market_event_rate=settings.market_event_rate,
        clock=MarketClock(settings.market_time_scale, settings.market_anchor),
        token_ttl_seconds=settings.sandbox_token_ttl_seconds,
        rate_per_second=settings.sandbox_rate_per_second,
        rate_burst=settings.sandbox_rate_burst,
    )
    host, port = host or settings.sandbox_host, port or settings.sandbox_port
    click.echo(f"sandbox platform on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    uvicorn.run(create_sandbox_app(config), host=host, port=port, log_level="warning")


@cli.group()
def personalities() -> None:
    """Sample and validate agent personalities."""


@personalities.command("sample")
@click.argument("count", type=click.IntRange(min=1, max=10_000))
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same fleet.")
@click.option(
    "--population",
    "population",
    default="balanced",
    show_default=True,
    help="An archetype (balanced, news-hounds, contrarians, long-term) or a file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def personalities_sample(count: int, seed: int, population: str, as_json: bool) -> None:
    """Sample COUNT personalities."""
    from personalities import sample

    fleet = [
        p.model_dump(mode="json") for p in sample(count, seed, load_population_file(population))
    ]
    if as_json:
        click.echo(json.dumps(fleet, indent=2))
    else:
        console.print(format_personalities(fleet))


@personalities.command("validate")
@click.argument("population")
def personalities_validate(population: str) -> None:
    """Check a population file; every problem is named with its field."""
    load_population_file(population)
    console.print(f"{population}: valid")


@cli.command()
@click.option("--agents", type=click.IntRange(1, 2000), default=50, show_default=True)
@click.option("--days", type=click.IntRange(1, 365), default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--population", default="balanced", show_default=True, help="An archetype or a population file."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def simulate(agents: int, days: int, seed: int, population: str, as_json: bool) -> None:
    """Trade a sampled fleet on the simulated market, offline and deterministically."""
    from orchestrator.simulate import simulate as run

    result = run(agents, days, seed, load_population_file(population))
    if as_json:
        click.echo(
            json.dumps({"by_strategy": result.by_strategy, "agents": result.agents}, indent=2)
        )
    else:
        console.print(format_simulation(result.by_strategy, days, result.steps))


@cli.group()
def image() -> None:
    """Build the agent image."""


@image.command("build")
@click.option(
    "--base-image",
    default="python:3.12-slim",
    show_default=True,
    help="Base image with python3 and venv (e.g. one from scripts/make-base-image.sh).",
)
@click.option(
    "--target",
    type=click.Choice(["agent", "orchestrator"]),
    default="agent",
    show_default=True,
    help="Which image to build.",
)
@click.option(
    "--tag",
    default=None,
    help="Image tag [default: FLEET_AGENT_IMAGE, or agent-fleet-orchestrator:latest].",
)
def image_build(base_image: str, target: str, tag: str | None) -> None:
    """Build the agent (or orchestrator) image offline from a wheelhouse."""
    from orchestrator.image import ImageBuildError, build_agent_image, build_orchestrator_image

    if target == "agent":
        tag, build = tag or load_settings().agent_image, build_agent_image
    else:
        tag, build = tag or "agent-fleet-orchestrator:latest", build_orchestrator_image
    try:
        image_id = build(tag, base_image)
    except ImageBuildError as exc:
        fail(str(exc))
    console.print(f"built {tag} ({image_id[7:19]}) on {base_image}")


cli.add_command(schedule)
cli.add_command(report)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="fleet")
