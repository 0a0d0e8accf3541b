"""`fleet schedule …` and `fleet report`: ramp plans, the daily report, reports on demand."""

from __future__ import annotations

import re

import click

from orchestrator.cli._common import (
    console,
    emit,
    json_option,
    operator,
    population_body,
    retire_order_option,
    sampling_options,
)
from orchestrator.cli.format import format_added, format_schedules
from orchestrator.operations.summaries import format_report
from orchestrator.untrusted import quoted

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class Duration(click.ParamType):
    """A span like 30s, 15m, 12h, 7d or 2w, as whole seconds."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):  # noqa: ANN201
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"(\d+)([smhdw])", str(value).strip())
        seconds = int(match[1]) * _UNITS[match[2]] if match else 0
        if seconds < 1:
            self.fail(f"{quoted(str(value))} is not a span like 30s, 15m, 12h, 7d or 2w")
        # Here, not at the top: that module reaches the store's tables, and importing
        # SQLAlchemy would cost every `fleet` command 0.7 s before it starts.
        from orchestrator.operations.schedules import MAX_EVERY_SECONDS

        if seconds > MAX_EVERY_SECONDS:
            self.fail(f"{quoted(str(value))} is longer than {MAX_EVERY_SECONDS // 86_400}d")
        return seconds


@click.group()
def schedule() -> None:
    """Ramp plans that grow or shrink the fleet over time, and the daily report."""


@schedule.command("ls")
@json_option
def schedule_ls(as_json: bool) -> None:
    """List the schedules, their last run and their next."""
    with operator() as api:
        schedules = api.schedules()
    emit(schedules, as_json, format_schedules)


@schedule.command("rm")
@click.argument("schedule_id")
def schedule_rm(schedule_id: str) -> None:
    """Stop and delete SCHEDULE_ID (agents a ramp already started stay)."""
    with operator() as api:
        removed = api.remove_schedule(schedule_id)
    console.print(f"removed {removed['id']}: {removed['plan']}")


@schedule.command("ramp")
@click.option("--to", "to", type=click.IntRange(0, 1000), required=True, help="Final size.")
@click.option("--step", type=click.IntRange(1, 1000), required=True, help="Agents per step.")
@click.option("--every", type=Duration(), required=True, help="Time between steps, e.g. 7d.")
@retire_order_option
@sampling_options
def schedule_ramp(
    to: int,
    step: int,
    every: int,
    retire_order: str,
    seed: int | None,
    population: str,
    strategy: str | None,
) -> None:
    """Grow or shrink the fleet to --to agents, --step at a time, every --every.

    The first step comes one --every from now; e.g. start with 10 and add 5 a week:
    `fleet spawn 10` then `fleet schedule ramp --to 50 --step 5 --every 7d`.
    """
    with operator() as api:
        made = api.add_schedule(
            "ramp",
            to=to,
            step=step,
            every_seconds=every,
            retire=retire_order,
            seed=seed,
            population=population_body(population),
            strategy=strategy,
        )
    console.print(format_added(made))


@schedule.command("report")
@click.option("--at", "at", default="16:30", show_default=True, help="Local time of day.")
@click.option("--tz", default="America/New_York", show_default=True, help="Its time zone.")
def schedule_report(at: str, tz: str) -> None:
    """Write the fleet report daily at --at (stored, and sent to the alert webhook)."""
    with operator() as api:
        made = api.add_schedule("report", at=at, timezone=tz)
    console.print(format_added(made))


@click.command()
@click.option("--now", "make_now", is_flag=True, help="Make a report of the last 24 h now.")
@json_option
def report(make_now: bool, as_json: bool) -> None:
    """Show the latest fleet report: orders, P&L by strategy, restarts and spend."""
    with operator() as api:
        latest = [api.make_report()] if make_now else api.reports(1)
    if not latest:
        click.echo(
            "no report yet: the daily one comes after the close, or run `fleet report --now`"
        )
        return
    emit(latest[0], as_json, format_report)
