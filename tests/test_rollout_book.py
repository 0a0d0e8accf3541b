"""The rollouts table on SQLite and PostgreSQL: begin, step, and the operator's pause,
resume and undo, each guarded by the state it expects and alerting once."""

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.lifecycle import AlertKind, RolloutState
from orchestrator.state.errors import Conflict
from orchestrator.state.rollouts import RolloutBook, admitted

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_rollout_steps_pauses_resumes_and_is_undone_once(store):
    book = RolloutBook(store)
    base = book.begin("sha256:old", "sha256:old", [], NOW)
    assert base.state == RolloutState.DONE and base.finished_at is not None
    with pytest.raises(Conflict, match="no rollout is in flight"):
        book.command(RolloutState.PAUSED, NOW)

    rollout = book.begin("sha256:old", "sha256:new", ["a"], NOW)
    assert book.begin("sha256:old", "sha256:new", ["a"], NOW).id == rollout.id  # twice: once
    assert book.step(rollout.id, RolloutState.ROLLING, ["a", "b"], None, NOW)
    assert admitted(book.latest()) == ["a", "b"]

    assert book.command(RolloutState.PAUSED, NOW).state == RolloutState.PAUSED
    assert book.command(RolloutState.PAUSED, NOW).state == RolloutState.PAUSED  # said twice
    assert not book.step(rollout.id, RolloutState.ROLLING, ["a", "b", "c"], None, NOW)
    assert book.command(RolloutState.ROLLING, NOW).state == RolloutState.ROLLING
    assert book.step(rollout.id, RolloutState.ROLLING, ["a", "b", "c"], None, NOW)
    undone = book.command(RolloutState.ROLLED_BACK, NOW + timedelta(seconds=1))
    assert undone.state == RolloutState.ROLLED_BACK and admitted(undone) == []
    assert undone.reason == "undone by the operator"
    with pytest.raises(Conflict):
        book.command(RolloutState.ROLLING, NOW)
    assert [a.kind for a in store.alerts()] == [AlertKind.ROLLOUT_FAILED]


def test_a_newer_image_supersedes_a_rollout_in_flight(store):
    book = RolloutBook(store)
    first = book.begin("sha256:a", "sha256:b", ["x"], NOW)
    second = book.begin("sha256:a", "sha256:c", ["x"], NOW)
    assert second.id != first.id and book.latest().id == second.id
    assert not book.step(first.id, RolloutState.DONE, ["x"], None, NOW)
    assert book.step(second.id, RolloutState.DONE, ["x"], None, NOW)
    assert [a.kind for a in store.alerts()] == [AlertKind.ROLLOUT_DONE]
