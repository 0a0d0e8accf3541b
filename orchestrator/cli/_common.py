"""What every `fleet` command shares: the console, exit codes, settings, the operator
client, one-line failures, `--json` or a view, and the options that say how
personalities are drawn."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console, RenderableType

from orchestrator.cli.client import OperatorClient, OperatorError
from orchestrator.cli.format import plain
from orchestrator.settings import Settings
from orchestrator.untrusted import refusal
from personalities import STRATEGIES

EXIT_FAILED = 1
EXIT_USAGE = 2

# Piped output (`fleet ls | less`, CI logs) gets wide tables instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON instead of the human-readable view."
)


def emit(data: Any, as_json: bool, render: Callable[[Any], RenderableType | str]) -> None:
    """Print `data` as JSON with --json, else as `render(data)` draws it (plain text as is)."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    view = render(data)
    if isinstance(view, str):
        click.echo(view)
    else:
        console.print(view)


def fail(message: str, code: int = EXIT_FAILED) -> None:
    """Print `error: message` on stderr (control characters made visible) and exit."""
    click.echo(f"error: {plain(message)}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    """Settings from the environment and `.env`, or a one-line error naming the bad field."""
    try:
        return Settings()
    except UnicodeDecodeError as exc:  # the only file read here is .env
        fail(f"invalid settings: .env is not UTF-8 text (byte {exc.start})", EXIT_USAGE)
        raise  # unreachable: fail exits
    except ValidationError as exc:
        first = exc.errors()[0]
        message = refusal(first)
        if first["loc"]:
            message = f"FLEET_{str(first['loc'][0]).upper()}: {message}"
        fail(f"invalid settings: {message}", EXIT_USAGE)
        raise  # unreachable: fail exits


@contextmanager
def operator() -> Iterator[OperatorClient]:
    """An operator API client whose errors end the command with one line (exit 2 for a
    refused argument, else 1)."""
    client = OperatorClient(load_settings())
    try:
        yield client
    except OperatorError as exc:
        fail(str(exc), EXIT_USAGE if exc.usage else EXIT_FAILED)
    finally:
        client.close()


def sampling_options(command: Callable) -> Callable:
    """The options that say how new agents' personalities are drawn."""
    for option in reversed(
        [
            click.option("--seed", type=int, default=None, help="Same seed, same personalities."),
            click.option(
                "--population",
                default="balanced",
                show_default=True,
                help="An archetype (balanced, news-hounds, contrarians, long-term) or a file.",
            ),
            click.option(
                "--strategy",
                type=click.Choice(STRATEGIES),
                default=None,
                help="Give every new agent this strategy instead of the sampled one.",
            ),
        ]
    ):
        command = option(command)
    return command


retire_order_option = click.option(
    "--retire",
    "retire_order",
    type=click.Choice(["newest", "oldest"]),
    default="newest",
    show_default=True,
    help="Which agents go first when the fleet shrinks.",
)


def population_body(population: str) -> str | dict:
    """An archetype name as is; a file is read and checked here, the daemon gets its content."""
    from personalities import ARCHETYPES

    return population if population in ARCHETYPES else load_population_file(population).model_dump()


def load_population_file(ref: str):
    """A population file, or its problems one per line and exit 2."""
    from personalities import PopulationError, load_population

    try:
        return load_population(ref)
    except PopulationError as exc:
        for problem in exc.problems:  # one line per problem, each naming its field
            click.echo(f"error: {plain(ref)}: {plain(problem)}", err=True)
        sys.exit(EXIT_USAGE)
