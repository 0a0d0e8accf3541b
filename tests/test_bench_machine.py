"""Where the machine's CPU goes (`bench.machine`): two readings give each part's time
between them, with processes and containers that come and go meanwhile."""

import pytest

from bench.machine import BUSY, KTHREADD, reading, shares, spent


def _reading(busy: float, daemon: float, kernel: dict, agents: dict) -> dict:
    return {"daemon": daemon, "kernel": kernel, "agents": agents, BUSY: busy}


BEFORE = _reading(100.0, 10.0, {"15": 30.0, "14888": 7.0}, {"a": 1.0, "b": 2.0})
# kworker 14888 retired, 15 ran 1 s more and 16 began; agent b went and c came
AFTER = _reading(110.0, 12.0, {"15": 31.0, "16": 0.5}, {"a": 1.5, "c": 0.25})


def test_a_process_that_ends_between_readings_takes_only_its_own_time_along():
    assert shares(BEFORE, AFTER, 10.0) == {"daemon": 0.2, "kernel": 0.1, "agents": 0.05}


def test_a_spawn_counts_the_newcomers_from_zero_and_the_rest_as_other():
    found = spent(BEFORE, AFTER)
    assert found["kernel"] == 1.5  # 15's second, and all of 16's time
    assert found["agents"] == 0.75
    assert found["other"] == 10.0 - 2.0 - 1.5 - 0.75


@pytest.mark.docker
def test_the_engine_and_the_kernel_are_read_process_by_process(docker_client):
    now = reading({}, docker_client, ("agents", "fleet.instance=nobody"))
    assert str(KTHREADD) in now["kernel"]  # kthreadd itself, by its PID
    assert now["engine"] and all(s >= 0 for s in now["engine"].values())
    assert now["agents"] == {}
