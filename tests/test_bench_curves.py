"""One refresh of the overview's curves (`bench.curves`): timed and its memory read, over
more days of samples than the one its anchor holds."""

from bench.curves import curves


def test_a_refresh_is_timed_beside_one_days_anchor():
    timed, memory = curves(agents=4, days=2)
    assert timed.value > 0 and memory.value > 0
    assert "4 agents, 11,520 samples (2 days); one day's 5,760: " in timed.detail
