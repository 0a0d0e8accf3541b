"""`fleet up|config|doctor|sandbox|personalities|simulate|image`: running the daemon and
the tools around it."""

from __future__ import annotations

import click
from rich.markup import escape

from orchestrator.cli._common import (
    EXIT_USAGE,
    console,
    emit,
    fail,
    json_option,
    load_population_file,
    load_settings,
)
from orchestrator.cli.format import (
    format_personalities,
    format_settings,
    format_simulation,
    plain,
)
from orchestrator.untrusted import visible


@click.command()
def up() -> None:
    """Start the orchestrator daemon in the foreground."""
    from orchestrator.api.listen import CannotListen
    from orchestrator.daemon import serve
    from orchestrator.keys import SecretFileError
    from orchestrator.logs import setup_logging
    from orchestrator.runtime import RuntimeFailure
    from orchestrator.state.errors import LeaseHeld, StoreUnavailable
    from orchestrator.tools.doctor import unknown_settings

    settings = load_settings()
    setup_logging(settings.log_format)
    for name in unknown_settings():
        click.echo(f"warning: {plain(name)} is not a setting, so it is ignored", err=True)
    try:
        serve(settings)
    except (StoreUnavailable, LeaseHeld, RuntimeFailure, CannotListen, SecretFileError) as exc:
        fail(str(exc))
    except OSError as exc:  # the state dir, a file in it, the gateway socket's directory
        where = f": {exc.filename}" if exc.filename else ""
        fail(f"cannot start: {exc.strerror or exc}{where}")


@click.command("config")
@json_option
def show_config(as_json: bool) -> None:
    """The effective settings (environment and .env), secrets masked."""
    from orchestrator.tools.config_docs import effective

    emit(effective(load_settings()), as_json, format_settings)


@click.command()
def doctor() -> None:
    """Check everything the fleet needs, one line per check with a fix."""
    from orchestrator.tools.doctor import diagnose

    marks = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}
    failed = 0
    for check in diagnose(load_settings()):
        failed += check.status == "fail"
        hint = f"  [dim]→ {escape(check.hint)}[/]" if check.hint and check.status != "ok" else ""
        detail = escape(visible(check.detail))  # it may quote the platform, the engine, a file
        console.print(f"{marks[check.status]} {check.name:<14} {detail}{hint}")
    if failed:
        fail(f"{failed} check(s) failed")


@click.command()
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
    from orchestrator.api.listen import CannotListen, on_port
    from sandbox.app import SandboxConfig, create_sandbox_app

    settings = load_settings()
    if settings.controller_api_key is None:
        fail("FLEET_CONTROLLER_API_KEY is not set: the sandbox needs a controller key", EXIT_USAGE)
    try:
        secret = keys.derived_key(keys.instance_key(settings.state_dir), "sandbox")
    except keys.SecretFileError as exc:
        fail(str(exc))
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
    try:
        listener = on_port(host, port, "pass a free one with --port (or FLEET_SANDBOX_PORT)")
    except CannotListen as exc:
        fail(str(exc))
    click.echo(f"sandbox platform on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    served = uvicorn.Config(create_sandbox_app(config), log_level="warning")
    uvicorn.Server(served).run(sockets=[listener])


@click.group()
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
@json_option
def personalities_sample(count: int, seed: int, population: str, as_json: bool) -> None:
    """Sample COUNT personalities."""
    from personalities import sample

    fleet = [
        p.model_dump(mode="json") for p in sample(count, seed, load_population_file(population))
    ]
    emit(fleet, as_json, format_personalities)


@personalities.command("validate")
@click.argument("population")
def personalities_validate(population: str) -> None:
    """Check a population file; every problem is named with its field."""
    load_population_file(population)
    click.echo(f"{plain(population)}: valid")


@click.command()
@click.option("--agents", type=click.IntRange(1, 2000), default=50, show_default=True)
@click.option("--days", type=click.IntRange(1, 365), default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--population", default="balanced", show_default=True, help="An archetype or a population file."
)
@json_option
def simulate(agents: int, days: int, seed: int, population: str, as_json: bool) -> None:
    """Trade a sampled fleet on the simulated market, offline and deterministically."""
    from orchestrator.tools.simulate import simulate as run

    limits = load_settings().risk_limits()
    result = run(agents, days, seed, load_population_file(population), limits)
    emit(
        {"by_strategy": result.by_strategy, "social": result.social, "agents": result.agents},
        as_json,
        lambda _: format_simulation(result.by_strategy, result.social, days, result.steps),
    )


@click.group()
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
    from orchestrator.tools.image import (
        ImageBuildError,
        build_agent_image,
        build_orchestrator_image,
    )

    if target == "agent":
        tag, build = tag or load_settings().agent_image, build_agent_image
    else:
        tag, build = tag or "agent-fleet-orchestrator:latest", build_orchestrator_image
    try:
        image_id = build(tag, base_image)
    except ImageBuildError as exc:
        fail(str(exc))
    console.print(f"built {tag} ({image_id[7:19]}) on {base_image}")
