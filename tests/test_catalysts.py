"""Catalyst learning: bounded scores per event type, and the event-driven tilt they give."""

from agent_runtime.catalysts import CatalystScores


def test_scores_smooth_returns_and_weights_stay_within_bounds():
    scores = CatalystScores()
    scores.record("fda", 0.20)
    assert scores.weights() == {"fda": 1.5}  # capped
    for _ in range(20):
        scores.record("rating", -0.5)
    assert scores.weights()["rating"] == 0.5  # floored, never switched off
    scores.record("earnings", 0.02)
    scores.record("earnings", -0.02)
    assert 0.9 < scores.weights()["earnings"] < 1.1
    assert scores.report()["rating"]["trades"] == 20


def test_a_wild_return_cannot_run_away():
    scores = CatalystScores()
    scores.record("m&a", 50.0)
    assert scores.scores["m&a"] == 1.0 and scores.weights()["m&a"] == 1.5
