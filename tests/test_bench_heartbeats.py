"""What a heartbeat costs (`bench.heartbeats`): the beats it times go through the daemon's
own app, are answered 200 by the lane and reach the store; it refuses to report otherwise."""

import pytest

import bench.heartbeats
from bench.heartbeats import heartbeats


def test_the_timed_beats_are_answered_and_reach_the_store():
    warm, cold = heartbeats(agents=3, rounds=2)
    assert warm.value > 0 and cold.value > 0
    assert "3 agents, 3 beats each way" in warm.detail


def test_a_beat_the_lane_does_not_answer_stops_the_benchmark(monkeypatch):
    monkeypatch.setattr(bench.heartbeats, "HEARTBEAT", "/v1/agent/heartbeats")  # no such route
    with pytest.raises(RuntimeError, match="answered 404, not 200"):
        heartbeats(agents=2, rounds=2)


def test_fewer_than_a_warm_and_a_cold_round_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        heartbeats(agents=1, rounds=1)
