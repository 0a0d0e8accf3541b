"""The `fleet` command. Commands are thin: parse, call the operator API, print a format_*.
One module per command group: `agents` (spawn, scale, retire, pause, ls, show, logs),
`live` (dashboard, demo), `schedule` (schedules and reports), `tools` (up, config,
doctor, sandbox, personalities, simulate, image).

Exit codes: 0 success; 1 the operation failed or the daemon is not running; 2 bad usage
or bad input (an invalid argument or setting). Errors are one line on stderr, never a
traceback and never a secret.
"""

from __future__ import annotations

import click

from orchestrator.cli import agents, live, schedule, tools


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Run and operate a fleet of autonomous paper-trading agents."""


for command in (
    tools.up,
    agents.spawn,
    agents.scale,
    agents.pause,
    agents.resume,
    agents.ls,
    agents.show,
    agents.logs,
    live.dashboard,
    live.demo,
    tools.show_config,
    tools.doctor,
    agents.retire,
    tools.sandbox,
    tools.personalities,
    tools.simulate,
    tools.image,
    schedule.schedule,
    schedule.report,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="fleet")
