"""The soak in small (`bench.soak`): a handful of agents on Docker against the sandbox's
fast market, three minutes of the fault menu in shuffled rounds, the store on PostgreSQL
so that its outage is one of them. The invariants must hold at the end, and after every
agent is retired. The figures it prints are not asserted: timings are the benchmark's."""

import pytest

from bench.soak import FAULTS, soak

pytestmark = pytest.mark.docker


@pytest.mark.postgres
@pytest.mark.xdist_group("soak")
def test_three_minutes_of_faults_break_no_invariant(docker_client, postgres_url):
    result = soak(4, 3, fault_every=5, cycle=1, database_url=postgres_url, seed=7)
    assert result.violations == []
    assert set(result.faults) == set(FAULTS)  # the whole menu, at least once each
    assert sum(result.faults.values()) >= 2 * len(FAULTS)
    assert result.filled > 0  # the fleet traded through it all
    assert len(result.samples) > 10  # the daemon was watched throughout
