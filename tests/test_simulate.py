"""`fleet simulate`: the agents' own decision code over the simulated market, deterministic."""

import json
import subprocess
import sys

from orchestrator.settings import Settings
from orchestrator.tools.simulate import simulate
from personalities import ARCHETYPES, STRATEGIES

LIMITS = Settings(_env_file=None).risk_limits()


def test_the_same_arguments_give_the_same_results():
    first = simulate(12, 4, 9, ARCHETYPES["balanced"], LIMITS)
    assert first == simulate(12, 4, 9, ARCHETYPES["balanced"], LIMITS)
    assert first != simulate(12, 4, 10, ARCHETYPES["balanced"], LIMITS)


def test_agents_trade_within_their_rails():
    result = simulate(20, 6, 3, ARCHETYPES["news-hounds"], LIMITS)
    assert sum(a["orders"] for a in result.agents) > 0
    assert set(result.by_strategy) <= set(STRATEGIES)
    for agent in result.agents:
        assert agent["positions"] <= 10
        assert agent["orders"] <= 20 * 6  # the daily cap
        assert agent["equity"] > 0


def test_cli_prints_json_and_refuses_a_bad_population(tmp_path):
    run = [sys.executable, "-m", "orchestrator.cli", "simulate"]
    result = subprocess.run(
        [*run, "--agents", "5", "--days", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["agents"]) == 5
    bad = subprocess.run([*run, "--population", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: nope: cannot read it")
