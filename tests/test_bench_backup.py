"""What a backup and a restore cost (`bench.backup`): both run as the real CLI, every row
of history written comes back, and each figure is read, not zero."""

from bench.backup import DECISIONS_A_DAY, EVENTS_A_DAY, SAMPLES_A_DAY, backup


def test_a_round_trip_is_measured_and_brings_every_row_back():
    figures = {f.name: f for f in backup(agents=3)}
    assert sorted(figures) == [
        "fleet backup: peak memory",
        "fleet backup: seconds",
        "fleet restore: peak memory",
        "fleet restore: seconds",
    ]
    rows = 3 * (SAMPLES_A_DAY + DECISIONS_A_DAY + EVENTS_A_DAY + 1)  # + each one's spawn
    for figure in figures.values():
        assert figure.value > 0 and f"3 agents, a day each: {rows:,} rows" in figure.detail
    assert figures["fleet backup: peak memory"].value > 20  # an interpreter's MB, read
