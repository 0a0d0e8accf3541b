"""The `fleet` command. Commands are thin: parse, call the operator API, print a format_*.
One module per command group: `agents` (spawn, scale, retire, pause, ls, show, why, logs),
`live` (dashboard, demo), `schedule` (schedules and reports), `rollout` (new agent
images), `backup` (backup, restore: the store itself, not the API), `tools` (up, config,
doctor, sandbox, personalities, simulate, image).

Exit codes: 0 success; 1 the operation failed or the daemon is not running; 2 bad usage
or bad input (an invalid argument or setting). Errors are one line on stderr, never a
traceback and never a secret.
"""

from __future__ import annotations

import click

from orchestrator.cli import agents, backup, live, rollout, schedule, tools


class _Fleet(click.Group):
    """The command list shows each command's whole first sentence, wrapped, never cut."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Fleet, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agent-fleet", prog_name="fleet")
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
    agents.why,
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
    rollout.rollout,
    backup.backup,
    backup.restore,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="fleet")
