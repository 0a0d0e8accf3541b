"""The reconciler's pure decision, one situation per test."""

from datetime import UTC, datetime, timedelta

from orchestrator.phases import Phase
from orchestrator.reconciler import (
    Adopt,
    Desired,
    DesiredAgent,
    Provision,
    Recover,
    RemoveOrphan,
    Replace,
    Restart,
    Retire,
    Start,
    action_key,
    backoff,
    plan,
    restart_delay,
)
from orchestrator.runtime import ObservedAgent

NOW = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
SPEC = "spec-1"


def agent(agent_id, phase=Phase.RUNNING, container_id=None):
    return DesiredAgent(agent_id, f"agent-{agent_id}", phase, container_id)


def workload(container_id, agent_id, state="running", exit_code=None, spec_hash=SPEC):
    return ObservedAgent(container_id, agent_id, f"fleet-x-{agent_id}", state, exit_code, spec_hash)


def test_nothing_happens_before_the_first_list():
    desired = Desired([agent("a", Phase.PENDING), agent("b", Phase.RETIRING, "c-b")], SPEC)
    assert plan(desired, None, NOW) == []


def test_pending_agent_without_workload_is_started():
    assert plan(Desired([agent("a", Phase.PENDING)], SPEC), [], NOW) == [Start("a", "agent-a")]


def test_running_agent_whose_workload_vanished_is_restarted_and_the_loss_counted():
    desired = Desired([agent("a", Phase.RUNNING, "c-a")], SPEC)
    assert plan(desired, [], NOW) == [Restart("a", "agent-a", None, "its workload disappeared")]


def test_recorded_running_workload_needs_nothing():
    desired = Desired([agent("a", Phase.RUNNING, "c-a")], SPEC)
    assert plan(desired, [workload("c-a", "a")], NOW) == []


def test_unrecorded_workload_of_an_agent_is_adopted_not_restarted():
    desired = Desired([agent("a", Phase.PENDING, None)], SPEC)
    assert plan(desired, [workload("c-a", "a")], NOW) == [Adopt("a", "c-a")]


def test_workload_without_a_row_is_an_orphan():
    desired = Desired([agent("a", Phase.RUNNING, "c-a")], SPEC)
    observed = [workload("c-a", "a"), workload("c-z", "z"), workload("c-n", None)]
    assert plan(desired, observed, NOW) == [
        RemoveOrphan("c-z", "fleet-x-z", "no live agent owns it"),
        RemoveOrphan("c-n", "fleet-x-None", "no live agent owns it"),
    ]


def test_second_workload_of_one_agent_is_removed_and_the_recorded_one_kept():
    desired = Desired([agent("a", Phase.RUNNING, "c-2")], SPEC)
    observed = [workload("c-1", "a"), workload("c-2", "a")]
    assert plan(desired, observed, NOW) == [
        RemoveOrphan("c-1", "fleet-x-a", "duplicate of fleet-x-a")
    ]


def test_retiring_agent_has_all_its_workloads_retired():
    desired = Desired([agent("a", Phase.RETIRING, "c-a")], SPEC)
    observed = [workload("c-a", "a"), workload("c-b", "a", state="exited", exit_code=0)]
    assert plan(desired, observed, NOW) == [Retire("a", ("c-a", "c-b"))]


def test_retiring_agent_without_workload_still_retires():
    assert plan(Desired([agent("a", Phase.RETIRING)], SPEC), [], NOW) == [Retire("a", ())]


def test_workload_of_a_retired_agent_is_an_orphan():
    # Retired agents are not in the desired set at all; what is left of them goes.
    assert plan(Desired([], SPEC), [workload("c-a", "a")], NOW) == [
        RemoveOrphan("c-a", "fleet-x-a", "no live agent owns it")
    ]


def test_exited_workload_is_restarted_with_its_exit_code():
    desired = Desired([agent("a", Phase.RUNNING, "c-a")], SPEC)
    observed = [workload("c-a", "a", state="exited", exit_code=3)]
    assert plan(desired, observed, NOW) == [Restart("a", "agent-a", "c-a", "exited with code 3")]


def test_workload_with_an_old_spec_is_replaced():
    desired = Desired([agent("a", Phase.RUNNING, "c-a")], SPEC)
    observed = [workload("c-a", "a", spec_hash="spec-0")]
    assert plan(desired, observed, NOW) == [Replace("a", "agent-a", "c-a", "spec changed")]


def test_failed_agent_gets_no_workload():
    assert plan(Desired([agent("a", Phase.FAILED)], SPEC), [], NOW) == []


def test_action_keys_serialise_per_agent_and_per_orphan():
    assert action_key(Start("a", "agent-a")) == action_key(Retire("a", ())) == "agent:a"
    assert action_key(RemoveOrphan("c-1", "n", "r")) == "container:c-1"


def test_with_a_platform_a_new_agent_is_provisioned_before_it_starts():
    desired = Desired([agent("a", Phase.PENDING)], SPEC, platform=True)
    assert plan(desired, [], NOW) == [Provision("a", "agent-a")]


def test_provisioning_waits_for_its_back_off():
    later = NOW + timedelta(seconds=4)
    waiting = DesiredAgent("a", "agent-a", Phase.PROVISIONING, None, next_provision_at=later)
    assert plan(Desired([waiting], SPEC, platform=True), [], NOW) == []
    assert plan(Desired([waiting], SPEC, platform=True), [], later) == [Provision("a", "agent-a")]


def test_an_agent_with_its_account_starts():
    ready = DesiredAgent("a", "agent-a", Phase.STARTING, None, has_account=True)
    assert plan(Desired([ready], SPEC, platform=True), [], NOW) == [Start("a", "agent-a")]


def test_retiring_an_agent_with_an_account_disables_it():
    retiring = DesiredAgent("a", "agent-a", Phase.RETIRING, "c-a", has_account=True)
    desired = Desired([retiring], SPEC, platform=True)
    assert plan(desired, [workload("c-a", "a")], NOW) == [Retire("a", ("c-a",), True)]


def test_back_off_doubles_from_one_second_to_five_minutes():
    assert [backoff(n).total_seconds() for n in range(0, 5)] == [0, 1, 2, 4, 8]
    assert backoff(9) == timedelta(minutes=4, seconds=16)
    assert backoff(10) == backoff(1000) == timedelta(minutes=5)


def beating(phase=Phase.RUNNING, silent=0.0, failures=0, healthy_for=None, **fields):
    """An agent with a workload whose last sign of life was `silent` seconds ago."""
    healthy_since = NOW - timedelta(seconds=healthy_for) if healthy_for is not None else None
    return DesiredAgent(
        "a",
        "agent-a",
        phase,
        "c-a",
        failures=failures,
        alive_at=NOW - timedelta(seconds=silent),
        healthy_since=healthy_since,
        **fields,
    )


TIMEOUT = timedelta(seconds=10)


def test_silence_up_to_the_heartbeat_timeout_is_healthy():
    desired = Desired([beating(silent=10)], SPEC, heartbeat_timeout=TIMEOUT)
    assert plan(desired, [workload("c-a", "a")], NOW) == []


def test_silence_past_the_heartbeat_timeout_restarts_as_unhealthy():
    desired = Desired([beating(silent=11)], SPEC, heartbeat_timeout=TIMEOUT)
    assert plan(desired, [workload("c-a", "a")], NOW) == [
        Restart("a", "agent-a", "c-a", "no heartbeat for 11s", unhealthy=True)
    ]


def test_a_frozen_workload_is_alive_until_its_silence_says_otherwise():
    frozen = [workload("c-a", "a", state="paused")]
    assert plan(Desired([beating(silent=3)], SPEC, heartbeat_timeout=TIMEOUT), frozen, NOW) == []
    late = Desired([beating(silent=30)], SPEC, heartbeat_timeout=TIMEOUT)
    assert plan(late, frozen, NOW)[0].unhealthy


def test_a_workload_created_but_never_started_is_started_not_judged_by_silence():
    desired = Desired([beating(Phase.STARTING, silent=60)], SPEC, heartbeat_timeout=TIMEOUT)
    assert plan(desired, [workload("c-a", "a", state="created")], NOW) == [Start("a", "agent-a")]


def test_backoff_waits_for_its_restart_time_then_starts():
    later = NOW + timedelta(seconds=4)
    waiting = DesiredAgent("a", "agent-a", Phase.BACKOFF, None, failures=3, next_restart_at=later)
    assert plan(Desired([waiting], SPEC), [], NOW) == []
    assert plan(Desired([waiting], SPEC), [], later) == [Start("a", "agent-a")]


def test_a_crash_loop_keeps_restarting_at_its_back_off():
    later = NOW + timedelta(minutes=5)
    looping = DesiredAgent("a", "agent-a", Phase.CRASHLOOP, None, failures=9, next_restart_at=later)
    assert plan(Desired([looping], SPEC), [], NOW) == []
    assert plan(Desired([looping], SPEC), [], later) == [Start("a", "agent-a")]


def test_failures_are_forgotten_after_a_healthy_stretch():
    reset = timedelta(minutes=10)
    short = Desired([beating(failures=4, healthy_for=599)], SPEC, restart_reset=reset)
    assert plan(short, [workload("c-a", "a")], NOW) == []
    long = Desired([beating(failures=4, healthy_for=600)], SPEC, restart_reset=reset)
    assert plan(long, [workload("c-a", "a")], NOW) == [Recover("a")]


def test_a_healthy_agent_without_failures_needs_no_recovery():
    desired = Desired([beating(failures=0, healthy_for=3600)], SPEC)
    assert plan(desired, [workload("c-a", "a")], NOW) == []


def test_restarts_are_immediate_then_double_from_one_second_to_five_minutes():
    delays = [restart_delay(n).total_seconds() for n in range(1, 7)]
    assert delays == [0, 1, 2, 4, 8, 16]
    assert restart_delay(50) == timedelta(minutes=5)
