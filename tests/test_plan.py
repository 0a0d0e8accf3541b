"""The lifecycle's pure decisions, one situation per test: what to do, how long to wait,
when a crash loop begins and ends, when provisioning is retried, and which alert to raise."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orchestrator.control.plan import (
    Adopt,
    AfterFailure,
    Desired,
    DesiredAgent,
    Policy,
    Provision,
    Recover,
    RemoveOrphan,
    Replace,
    Restart,
    Retire,
    Start,
    action_key,
    after_failure,
    backoff,
    plan,
    restart_delay,
)
from orchestrator.lifecycle import AlertKind, EventKind, Phase
from orchestrator.runtime import ObservedAgent

NOW = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
SPEC = "spec-1"
TIMEOUT = timedelta(seconds=10)
POLICY = Policy(
    heartbeat_timeout=TIMEOUT, restart_reset=timedelta(minutes=10), crashloop_threshold=5
)
AT_ONCE = timedelta(0)
# What the first failure of a healthy agent leads to: a restart at once.
FIRST_FAILURE = AfterFailure(1, Phase.STARTING, AT_ONCE)


def agent(agent_id, phase=Phase.RUNNING, container_id=None, **fields):
    return DesiredAgent(agent_id, f"agent-{agent_id}", phase, container_id, **fields)


def fleet(*agents, platform=False):
    return Desired(list(agents), SPEC, POLICY, platform=platform)


def start(agent_id="a", phase=Phase.STARTING, on_failure=FIRST_FAILURE):
    return Start(agent_id, f"agent-{agent_id}", phase, on_failure)


def workload(container_id, agent_id, state="running", exit_code=None, spec_hash=SPEC):
    return ObservedAgent(container_id, agent_id, f"fleet-x-{agent_id}", state, exit_code, spec_hash)


def test_nothing_happens_before_the_first_list():
    assert (
        plan(fleet(agent("a", Phase.PENDING), agent("b", Phase.RETIRING, "c-b")), None, NOW) == []
    )


def test_pending_agent_without_workload_is_started():
    assert plan(fleet(agent("a", Phase.PENDING)), [], NOW) == [start()]


def test_running_agent_whose_workload_vanished_is_restarted_and_the_loss_counted():
    assert plan(fleet(agent("a", Phase.RUNNING, "c-a")), [], NOW) == [
        Restart(
            "a",
            "agent-a",
            None,
            EventKind.VANISHED,
            "its workload disappeared",
            FIRST_FAILURE,
            start(on_failure=AfterFailure(2, Phase.BACKOFF, timedelta(seconds=1))),
        )
    ]


def test_recorded_running_workload_needs_nothing():
    assert plan(fleet(agent("a", Phase.RUNNING, "c-a")), [workload("c-a", "a")], NOW) == []


def test_unrecorded_workload_of_an_agent_is_adopted_not_restarted():
    assert plan(fleet(agent("a", Phase.PENDING)), [workload("c-a", "a")], NOW) == [
        Adopt("a", "c-a", Phase.STARTING)
    ]
    running = fleet(agent("a", Phase.RUNNING, "c-old"))
    assert plan(running, [workload("c-a", "a")], NOW) == [Adopt("a", "c-a", Phase.RUNNING)]


def test_a_workload_started_but_never_recorded_awaits_its_first_beat_whatever_it_waited_out():
    # the daemon died between starting the agent's workload and recording the start
    due = NOW - timedelta(seconds=30)
    backing_off = agent("a", Phase.BACKOFF, None, failures=2, next_restart_at=due)
    assert plan(fleet(backing_off), [workload("c-a", "a")], NOW) == [
        Adopt("a", "c-a", Phase.STARTING)
    ]
    looping = agent("a", Phase.CRASHLOOP, None, failures=6, next_restart_at=due)
    assert plan(fleet(looping), [workload("c-a", "a")], NOW) == [Adopt("a", "c-a", Phase.CRASHLOOP)]


def test_workload_without_a_row_is_an_orphan():
    observed = [workload("c-a", "a"), workload("c-z", "z"), workload("c-n", None)]
    assert plan(fleet(agent("a", Phase.RUNNING, "c-a")), observed, NOW) == [
        RemoveOrphan("c-z", "fleet-x-z", "no live agent owns it"),
        RemoveOrphan("c-n", "fleet-x-None", "no live agent owns it"),
    ]


def test_second_workload_of_one_agent_is_removed_and_the_recorded_one_kept():
    observed = [workload("c-1", "a"), workload("c-2", "a")]
    assert plan(fleet(agent("a", Phase.RUNNING, "c-2")), observed, NOW) == [
        RemoveOrphan("c-1", "fleet-x-a", "duplicate of fleet-x-a")
    ]


def test_retiring_agent_has_all_its_workloads_retired():
    observed = [workload("c-a", "a"), workload("c-b", "a", state="exited", exit_code=0)]
    assert plan(fleet(agent("a", Phase.RETIRING, "c-a")), observed, NOW) == [
        Retire("a", ("c-a", "c-b"))
    ]


def test_retiring_agent_without_workload_still_retires():
    assert plan(fleet(agent("a", Phase.RETIRING)), [], NOW) == [Retire("a", ())]


def test_workload_of_a_retired_agent_is_an_orphan():
    # Retired agents are not in the desired set at all; what is left of them goes.
    assert plan(fleet(), [workload("c-a", "a")], NOW) == [
        RemoveOrphan("c-a", "fleet-x-a", "no live agent owns it")
    ]


def test_exited_workload_is_restarted_with_its_exit_code():
    observed = [workload("c-a", "a", state="exited", exit_code=3)]
    (restart,) = plan(fleet(agent("a", Phase.RUNNING, "c-a")), observed, NOW)
    assert (restart.container_id, restart.cause, restart.reason) == (
        "c-a",
        EventKind.EXITED,
        "exited with code 3",
    )
    assert restart.then == FIRST_FAILURE and restart.start is not None
    assert not restart.in_place  # this runtime cannot start it again


def test_an_exited_workload_is_started_again_in_place_only_at_once_and_as_it_should_run():
    in_place = replace(fleet(), restarts_in_place=True)

    def restart(failures=0, spec_hash=SPEC, state="exited"):
        observed = [workload("c-a", "a", state=state, exit_code=1, spec_hash=spec_hash)]
        crashed = agent("a", Phase.RUNNING, "c-a", failures=failures)
        (action,) = plan(replace(in_place, agents=[crashed]), observed, NOW)
        return action

    assert restart().in_place and restart().start is not None
    assert not restart(failures=1).in_place  # it backs off: the workload is removed meanwhile
    assert not restart(spec_hash="spec-0").in_place  # an old spec gets a new workload
    silent = agent("a", Phase.RUNNING, "c-a", alive_at=NOW - 2 * TIMEOUT)
    (hung,) = plan(replace(in_place, agents=[silent]), [workload("c-a", "a")], NOW)
    assert hung.cause == EventKind.UNHEALTHY and not hung.in_place  # a hung one is replaced


def test_workload_with_an_old_spec_is_replaced():
    observed = [workload("c-a", "a", spec_hash="spec-0")]
    assert plan(fleet(agent("a", Phase.RUNNING, "c-a")), observed, NOW) == [
        Replace("c-a", "spec changed", start())
    ]


def test_failed_agent_gets_no_workload():
    assert plan(fleet(agent("a", Phase.FAILED)), [], NOW) == []


def test_action_keys_serialise_per_agent_and_per_orphan():
    assert action_key(start()) == action_key(Retire("a", ())) == "agent:a"
    assert action_key(Replace("c-a", "spec changed", start())) == "agent:a"
    assert action_key(RemoveOrphan("c-1", "n", "r")) == "container:c-1"


def test_with_a_platform_a_new_agent_is_provisioned_before_it_starts():
    assert plan(fleet(agent("a", Phase.PENDING), platform=True), [], NOW) == [
        Provision("a", "agent-a", timedelta(seconds=1))
    ]


def test_provisioning_waits_for_its_back_off_and_the_next_retry_waits_longer():
    later = NOW + timedelta(seconds=4)
    waiting = agent("a", Phase.PROVISIONING, provision_attempts=3, next_provision_at=later)
    assert plan(fleet(waiting, platform=True), [], NOW) == []
    assert plan(fleet(waiting, platform=True), [], later) == [
        Provision("a", "agent-a", timedelta(seconds=8))
    ]
    many = agent("a", Phase.PROVISIONING, provision_attempts=40)
    assert plan(fleet(many, platform=True), [], NOW) == [
        Provision("a", "agent-a", timedelta(minutes=5))
    ]


def test_an_agent_with_its_account_starts():
    ready = agent("a", Phase.STARTING, has_account=True)
    assert plan(fleet(ready, platform=True), [], NOW) == [start()]


def test_retiring_an_agent_with_an_account_disables_it():
    retiring = agent("a", Phase.RETIRING, "c-a", has_account=True)
    assert plan(fleet(retiring, platform=True), [workload("c-a", "a")], NOW) == [
        Retire("a", ("c-a",), True)
    ]


def test_back_off_doubles_from_one_second_to_five_minutes():
    assert [backoff(n).total_seconds() for n in range(0, 5)] == [0, 1, 2, 4, 8]
    assert backoff(9) == timedelta(minutes=4, seconds=16)
    assert backoff(10) == backoff(1000) == timedelta(minutes=5)


def beating(phase=Phase.RUNNING, silent=0.0, failures=0, healthy_for=None, **fields):
    """An agent with a workload whose last sign of life was `silent` seconds ago."""
    healthy_since = NOW - timedelta(seconds=healthy_for) if healthy_for is not None else None
    return agent(
        "a",
        phase,
        "c-a",
        failures=failures,
        alive_at=NOW - timedelta(seconds=silent),
        healthy_since=healthy_since,
        **fields,
    )


def test_silence_up_to_the_heartbeat_timeout_is_healthy():
    assert plan(fleet(beating(silent=10)), [workload("c-a", "a")], NOW) == []


def test_silence_past_the_heartbeat_timeout_restarts_as_unhealthy():
    (restart,) = plan(fleet(beating(silent=11)), [workload("c-a", "a")], NOW)
    assert (restart.container_id, restart.cause, restart.reason) == (
        "c-a",
        EventKind.UNHEALTHY,
        "no heartbeat for 11s",
    )


def test_a_frozen_workload_is_alive_until_its_silence_says_otherwise():
    frozen = [workload("c-a", "a", state="paused")]
    assert plan(fleet(beating(silent=3)), frozen, NOW) == []
    assert plan(fleet(beating(silent=30)), frozen, NOW)[0].cause == EventKind.UNHEALTHY


def test_a_workload_created_but_never_started_is_started_not_judged_by_silence():
    created = [workload("c-a", "a", state="created")]
    assert plan(fleet(beating(Phase.STARTING, silent=60)), created, NOW) == [start()]


def test_a_created_workload_whose_start_failed_waits_out_the_back_off():
    # the engine refused its start (a network that is gone): it was started again at once,
    # 64 times in 10 s
    later = NOW + timedelta(seconds=4)
    refused = agent("a", Phase.BACKOFF, failures=3, next_restart_at=later)
    created = [workload("c-a", "a", state="created")]
    assert plan(fleet(refused), created, NOW) == []
    assert plan(fleet(refused), created, later) == [
        start(on_failure=AfterFailure(4, Phase.BACKOFF, timedelta(seconds=4)))
    ]


def test_backoff_waits_for_its_restart_time_then_starts():
    later = NOW + timedelta(seconds=4)
    waiting = agent("a", Phase.BACKOFF, failures=3, next_restart_at=later)
    assert plan(fleet(waiting), [], NOW) == []
    assert plan(fleet(waiting), [], later) == [
        start(on_failure=AfterFailure(4, Phase.BACKOFF, timedelta(seconds=4)))
    ]


def test_a_crash_loop_keeps_restarting_at_its_back_off_and_alerts_no_more():
    later = NOW + timedelta(minutes=5)
    looping = agent("a", Phase.CRASHLOOP, failures=9, next_restart_at=later)
    assert plan(fleet(looping), [], NOW) == []
    assert plan(fleet(looping), [], later) == [
        start(
            phase=Phase.CRASHLOOP,
            on_failure=AfterFailure(10, Phase.CRASHLOOP, timedelta(seconds=256)),
        )
    ]


def test_the_failure_that_reaches_the_threshold_enters_the_crash_loop_and_alerts_once():
    exited = [workload("c-a", "a", state="exited", exit_code=1)]
    (fourth,) = plan(fleet(agent("a", Phase.RUNNING, "c-a", failures=3)), exited, NOW)
    assert fourth.then == AfterFailure(4, Phase.BACKOFF, timedelta(seconds=4))
    assert fourth.start is None  # a later tick starts it, after the back-off
    (fifth,) = plan(fleet(agent("a", Phase.RUNNING, "c-a", failures=4)), exited, NOW)
    assert fifth.then == AfterFailure(5, Phase.CRASHLOOP, timedelta(seconds=8), AlertKind.CRASHLOOP)
    (sixth,) = plan(fleet(agent("a", Phase.CRASHLOOP, "c-a", failures=5)), exited, NOW)
    assert sixth.then == AfterFailure(6, Phase.CRASHLOOP, timedelta(seconds=16))


def test_a_start_that_fails_counts_as_a_failure_with_the_same_back_off():
    policy = Policy(TIMEOUT, timedelta(minutes=10), crashloop_threshold=3)
    steps = []
    failures, phase = 0, Phase.STARTING
    for _ in range(4):
        then = after_failure(failures, phase, policy)
        steps.append((then.failures, then.phase, then.delay.total_seconds(), then.alert))
        failures, phase = then.failures, then.phase
    assert steps == [
        (1, Phase.STARTING, 0, None),
        (2, Phase.BACKOFF, 1, None),
        (3, Phase.CRASHLOOP, 2, AlertKind.CRASHLOOP),
        (4, Phase.CRASHLOOP, 4, None),
    ]


def test_failures_are_forgotten_after_a_healthy_stretch():
    assert plan(fleet(beating(failures=4, healthy_for=599)), [workload("c-a", "a")], NOW) == []
    long = fleet(beating(failures=4, healthy_for=600))
    assert plan(long, [workload("c-a", "a")], NOW) == [Recover("a", ends_crashloop=False)]


def test_a_crash_loop_ends_after_a_healthy_stretch_and_says_so():
    looping = fleet(beating(Phase.CRASHLOOP, failures=7, healthy_for=600))
    assert plan(looping, [workload("c-a", "a")], NOW) == [Recover("a", ends_crashloop=True)]


def test_a_healthy_agent_without_failures_needs_no_recovery():
    assert plan(fleet(beating(failures=0, healthy_for=3600)), [workload("c-a", "a")], NOW) == []


def test_restarts_are_immediate_then_double_from_one_second_to_five_minutes():
    delays = [restart_delay(n).total_seconds() for n in range(1, 7)]
    assert delays == [0, 1, 2, 4, 8, 16]
    assert restart_delay(50) == timedelta(minutes=5)
