"""What `bench scale` reports from its measurements (`bench.scale._figures`): the spawn
against the floors that bracket it, and the 180 s goal only for 1,000 from zero; and an
OCI runtime the engine lacks, refused before anything starts."""

import subprocess
import sys

import pytest

from bench.machine import BUSY
from bench.scale import Step, _figures

CPU = {"daemon": 1.0, BUSY: 3.0}


def _step(agents: int, added: int, seconds: float) -> Step:
    ticks = {"partial": (0.1, 10.0, 0.0)}
    shares = {"daemon": 0.05, "agents": 0.06}
    return Step(agents, added, seconds, 0.05, 13.0, 10.0, ticks, shares, CPU)


def _by_name(steps: list[Step], floors: list) -> dict:
    figures = _figures(steps, [0.9] * 3, [1.0] * 3, floors, "", [150.0, 160.0], "crun")
    return {f.name: f for f in figures}


def test_the_spawn_is_compared_with_the_mean_of_the_floors_before_and_after():
    found = _by_name([_step(1000, 1000, 180.0)], [(140.0, CPU), (160.0, CPU)])
    floor = found["+1000 spawned, no orchestrator (the floor)"]
    assert floor.value == 150.0
    assert floor.detail == "before ours 140 s, after ours 160 s; ours 180 s: 1.20× their mean"
    assert "+1000 spawned, the floor before ours: the machine's CPU" in found
    assert "+1000 spawned, the floor after ours: the machine's CPU" in found


def test_a_run_cut_short_keeps_only_the_floor_after():
    found = _by_name([_step(300, 300, 60.0)], [(40.0, CPU)])
    floor = found["+300 spawned, no orchestrator (the floor)"]
    assert floor.detail == "after ours 40 s; ours 60 s: 1.50× the floor"
    assert "+300 spawned, the floor before ours: the machine's CPU" not in found


def test_only_a_spawn_of_1000_from_zero_carries_the_180_s_goal():
    from_zero = _by_name([_step(1000, 1000, 181.0)], [(140.0, CPU)])
    spawn = from_zero["1000 agents: +1000 heartbeating in"]
    assert spawn.within_budget is False
    assert spawn.detail == "5.5 agents/s; agents on crun"  # which runtime, with every spawn
    stepped = _by_name([_step(500, 500, 50.0), _step(1000, 500, 100.0)], [(70.0, CPU)])
    assert stepped["1000 agents: +500 heartbeating in"].within_budget is None
    assert stepped["500 agents: +500 heartbeating in"].within_budget is None


@pytest.mark.docker
def test_an_oci_runtime_the_engine_lacks_is_refused_before_anything_starts(docker_client):
    run = subprocess.run(
        [sys.executable, "-m", "bench", "scale", "--oci-runtime", "nosuch"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "--oci-runtime: the engine has no runtime 'nosuch' (it has " in run.stderr
    assert "runc" in run.stderr
