"""The soak in small (`bench.soak`): a handful of agents on Docker against the sandbox's
fast market, three minutes of the fault menu in shuffled rounds, the store on PostgreSQL
so that its outage is one of them. The invariants must hold at the end, and after every
agent is retired. The figures it prints are not asserted: timings are the benchmark's."""

import subprocess
import sys

import pytest

from bench.soak import FAULTS, Sample, Soak, soak
from bench.soak_report import figures, lives


@pytest.mark.docker
@pytest.mark.postgres
@pytest.mark.xdist_group("soak")
def test_three_minutes_of_faults_break_no_invariant(docker_client, postgres_url):
    result = soak(4, 3, fault_every=5, cycle=1, database_url=postgres_url, seed=7)
    assert result.violations == []
    assert set(result.faults) == set(FAULTS)  # the whole menu, at least once each
    assert sum(result.faults.values()) >= 2 * len(FAULTS)
    assert result.filled > 0  # the fleet traded through it all
    assert len(result.samples) > 10  # the daemon was watched throughout


def test_the_rss_figure_reads_each_life_of_the_daemon_after_its_warm_up():
    def sample(minute: float, pid: int, rss: float) -> Sample:
        return Sample(minute, rss, 40, 12, 9.0, 0.1, 4.0, 9.0, 0, 4, pid)

    first = [sample(m / 2, 101, 100 + m) for m in range(10)]  # minutes 0-4.5, growing
    second = [sample(5 + m / 2, 202, 150.0) for m in range(12)]  # minutes 5-10.5, flat
    result = Soak(4, 11, samples=first + second)
    assert [len(life) for life in lives(result.samples)] == [10, 12]
    (rss,) = [f for f in figures(result) if f.name == "daemon RSS after warm-up"]
    assert rss.value == 150.0  # the longest life's last
    assert "2 lives; longest 4.5 min: 150 → 150 MiB" in rss.detail
    assert "growth within a life median +3.5 MiB" in rss.detail  # (+7, 0): the first's


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--curves", "/no/such/folder/soak.png"], "--curves: no folder /no/such/folder"),
        (["--chaos", *(f for fault in FAULTS for f in ("--without", fault))], "at least one"),
        (["--without", "meteor"], "invalid choice: 'meteor'"),
    ],
)
def test_soak_options_that_cannot_work_are_refused_before_anything_starts(flags, said):
    run = subprocess.run(
        [sys.executable, "-m", "bench", "soak", *flags], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert said in run.stderr and "Traceback" not in run.stderr
