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


def test_a_new_process_goes_on_from_what_the_last_one_reported():
    before = CatalystScores()
    for trade_return in (0.05, -0.01, 0.03):
        before.record("earnings", trade_return)
    before.record("fda", -0.2)
    after = CatalystScores()
    report = before.report()
    after.restore({**report, "junk": {"score": "high"}, "none": None, "inf": {"score": 1e999}})
    assert after.weights() == before.weights() and after.trades == before.trades
    after.record("earnings", 0.01)
    before.record("earnings", 0.01)
    assert after.report() == before.report()  # rounded to four places, as reported
