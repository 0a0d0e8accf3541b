"""The rollout's decisions, pure: when it begins, admits the next batch, finishes, waits,
rolls back, and when it leaves an image alone."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orchestrator.control.rollout import (
    BeginRollout,
    Rollout,
    RolloutAgent,
    RolloutPolicy,
    StepRollout,
    Target,
    batch_size,
    decide,
)
from orchestrator.lifecycle import Phase, RolloutState

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = RolloutPolicy(0.25, settle=timedelta(seconds=10), deadline=timedelta(seconds=60))
OLD, NEW = Target("img-old", "spec-old"), Target("img-new", "spec-new")


def agents(*runs: str, phase: Phase = Phase.RUNNING, beat: timedelta = timedelta(0)):
    return [RolloutAgent(f"a{i}", phase, spec, NOW + beat) for i, spec in enumerate(runs)]


def rolling(admitted=("a0",), state=RolloutState.ROLLING, step_at=NOW - timedelta(seconds=30)):
    return Rollout(7, OLD, NEW, state, frozenset(admitted), step_at)


def test_the_first_round_records_what_the_fleet_runs_and_an_empty_tag_does_nothing():
    fleet = agents("spec-old", "spec-old")
    assert decide(None, "img-old", fleet, POLICY, NOW) == [BeginRollout("img-old", "img-old", ())]
    assert decide(None, "", fleet, POLICY, NOW) == []
    assert decide(rolling(), "", fleet, POLICY, NOW) == []


def test_a_new_image_begins_with_a_canary_batch_of_the_configured_share():
    done = Rollout(6, OLD, OLD, RolloutState.DONE, frozenset(), NOW)
    fleet = agents(*["spec-old"] * 8)
    assert decide(done, "img-new", fleet, POLICY, NOW) == [
        BeginRollout("img-old", "img-new", ("a0", "a1"))
    ]
    assert batch_size(0.1, 3) == 1 and batch_size(0.1, 1000) == 100


def test_healthy_batches_admit_the_next_and_the_last_one_finishes():
    fleet = agents("spec-new", "spec-old", "spec-old", "spec-old")
    assert decide(rolling(), "img-new", fleet, POLICY, NOW) == [
        StepRollout(7, RolloutState.ROLLING, ("a0", "a1"))
    ]
    everyone = ("a0", "a1", "a2", "a3")
    fleet = agents(*["spec-new"] * 4)
    assert decide(rolling(everyone), "img-new", fleet, POLICY, NOW) == [
        StepRollout(7, RolloutState.DONE, everyone)
    ]


def test_a_batch_waits_to_settle_then_rolls_back_past_its_deadline():
    early = agents("spec-new", "spec-old", beat=timedelta(seconds=-25))  # before settling
    assert decide(rolling(), "img-new", early, POLICY, NOW) == []
    # a beat before the new workload started is the old one's, stopping
    (canary,) = agents("spec-new")
    restarted = [replace(canary, started_at=NOW - timedelta(seconds=5))]
    assert decide(rolling(), "img-new", restarted, POLICY, NOW) == []
    late = rolling(step_at=NOW - timedelta(seconds=61))
    (step,) = decide(late, "img-new", agents("spec-old", "spec-old"), POLICY, NOW)
    assert step.state == RolloutState.ROLLED_BACK and "a0" in step.reason


def test_a_failing_canary_rolls_back_at_once_and_its_image_is_not_retried():
    before = [RolloutAgent("a0", Phase.BACKOFF, "spec-new", NOW, NOW - timedelta(minutes=1))]
    assert decide(rolling(), "img-new", before, POLICY, NOW) == []  # before its batch
    old = [RolloutAgent("a0", Phase.BACKOFF, None, NOW, NOW, "spec-old")]
    assert decide(rolling(), "img-new", old, POLICY, NOW) == []  # the old image failing
    failed = RolloutAgent("a0", Phase.BACKOFF, "spec-new", NOW, NOW, "spec-new")
    fleet = [failed, *agents("x", "spec-old")[1:]]
    (step,) = decide(rolling(), "img-new", fleet, POLICY, NOW)
    assert step == StepRollout(
        7, RolloutState.ROLLED_BACK, (), "agent a0 on the new image is backoff"
    )
    back = rolling((), RolloutState.ROLLED_BACK)
    assert decide(back, "img-new", fleet, POLICY, NOW) == []
    assert back.target("a0") == OLD


def test_an_update_the_runtime_rolled_back_itself_rolls_the_rollout_back():
    refused = [RolloutAgent("a0", Phase.RUNNING, "spec-old", NOW, None, None, NOW)]
    (step,) = decide(rolling(), "img-new", refused, POLICY, NOW)
    assert step.state == RolloutState.ROLLED_BACK and "rolled agent a0's update back" in step.reason


def test_paused_admits_nothing_and_a_newer_image_supersedes_from_the_old_one():
    paused = rolling(state=RolloutState.PAUSED)
    fleet = agents(*["spec-new"] * 4)
    assert decide(paused, "img-new", fleet, POLICY, NOW) == []
    assert paused.target("a0") == NEW and paused.target("a1") == OLD
    (begin,) = decide(paused, "img-newer", fleet, POLICY, NOW)
    assert (begin.old_image, begin.new_image) == ("img-old", "img-newer")
