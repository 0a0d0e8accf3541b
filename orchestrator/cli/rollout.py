"""`fleet rollout status|pause|resume|undo`: rollouts of a new agent image."""

from __future__ import annotations

import click

from orchestrator.cli._common import console, emit, json_option, operator
from orchestrator.cli.format import format_rollouts


@click.group()
def rollout() -> None:
    """Rollouts of a new agent image, a batch at a time (FLEET_ROLLOUT_BATCH)."""


@rollout.command("status")
@json_option
def rollout_status(as_json: bool) -> None:
    """The rollout in force and the ones before it."""
    with operator() as api:
        status = api.rollouts()
    emit(status, as_json, format_rollouts)


def _act(command: str, done: str) -> None:
    with operator() as api:
        record = api.rollout(command)
    console.print(f"rollout {record['id']} of image {record['new_image']} {done}")


@rollout.command("pause")
def rollout_pause() -> None:
    """Admit no new batch until `fleet rollout resume`."""
    _act("pause", "paused")


@rollout.command("resume")
def rollout_resume() -> None:
    """Go on admitting batches."""
    _act("resume", "resumed")


@rollout.command("undo")
def rollout_undo() -> None:
    """Roll every agent back to the old image; the new one is not tried again."""
    _act("undo", "undone: every agent goes back to the old image")
