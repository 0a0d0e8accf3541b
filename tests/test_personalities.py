"""Personalities: seeded sampling, population files and their errors, the CLI."""

import json
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from feeds.universe import SECTORS
from personalities import (
    ARCHETYPES,
    STRATEGIES,
    PopulationError,
    load_population,
    parse_population,
    sample,
)

BALANCED = ARCHETYPES["balanced"]


def fleet_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_same_seed_gives_the_same_fleet_and_another_seed_another():
    assert sample(100, 7, BALANCED) == sample(100, 7, BALANCED)
    assert sample(100, 7, BALANCED) != sample(100, 8, BALANCED)


def test_a_hundred_personalities_are_distinct_and_follow_the_mix():
    fleet = sample(100, 11, BALANCED)
    assert len({p.name for p in fleet}) == 100
    assert len({p.model_dump_json(exclude={"name"}) for p in fleet}) == 100
    counts = Counter(p.strategy for p in fleet)
    assert set(counts) == set(STRATEGIES)
    for strategy, weight in BALANCED.strategies.items():
        assert abs(counts[strategy] - 100 * weight) <= 1


def test_traits_stay_in_their_ranges_and_derived_parameters_are_sane():
    for p in sample(200, 3, ARCHETYPES["long-term"]):
        assert 0.1 <= p.risk_tolerance <= 0.5
        assert p.trading_frequency in ("swing", "position")
        assert 0.02 <= p.position_fraction <= 0.15
        assert p.stop_loss < p.take_profit
        assert 1 <= len(p.sector_preferences) <= 3
    scalper = next(
        p for p in sample(50, 1, ARCHETYPES["news-hounds"]) if p.trading_frequency == "scalping"
    )
    assert scalper.cycle_seconds < 300 and scalper.news_sensitivity >= 0.6


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"risk_tolerance": [0.05, 0.5]}, "risk_tolerance", "within 0.1..0.9"),
        ({"strategies": {"yolo": 1.0}}, "strategies.yolo", "Input should be"),
        ({"strategies": {"contrarian": 0.5, "event_driven": 0.3}}, "strategies", "sum to 0.8"),
        ({"frequencies": {"day": "often"}}, "frequencies.day", "valid number"),
        ({"frequencies": yaml.safe_load("{day: yes}")}, "frequencies.day", "valid number"),
        ({"strategies": {"contrarian": "1.0"}}, "strategies.contrarian", "valid number"),
        ({"risk_tolerance": {"low": "0.2", "high": 0.5}}, "risk_tolerance.low", "valid number"),
        ({"sectors_per_agent": [True, 2]}, "sectors_per_agent.0", "valid integer"),
        ({"sectors_per_agent": [1, 2.5]}, "sectors_per_agent.1", "valid integer"),
        ({"news_sensitivity": [0.9, 0.2]}, "news_sensitivity.high", "below low"),
        ({"sectors": {"crypto": 1}}, "sectors", "unknown sectors"),
        ({"leverage": 10}, "leverage", "Extra inputs"),
    ],
)
def test_each_invalid_population_gets_one_clear_error(change, field, reason):
    data = {"strategies": {"contrarian": 1.0}, **change}
    with pytest.raises(PopulationError) as err:
        parse_population(data, "pop.yaml")
    (problem,) = err.value.problems
    assert problem.startswith(f"{field}: ") and reason in problem


def test_yaml_and_toml_files_load_and_bad_files_are_named(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "strategies: {contrarian: 5e-1, news_momentum: 0.5}\nrisk_tolerance: [0.2, 0.4]\n"
    )  # 5e-1 is text to YAML 1.1, a number to people and to YAML 1.2
    (tmp_path / "p.toml").write_text("[strategies]\ncontrarian = 1.0\n")
    yaml_population = load_population(str(tmp_path / "p.yaml"))
    assert yaml_population.risk_tolerance.high == 0.4
    assert yaml_population.strategies["contrarian"] == 0.5
    assert load_population(str(tmp_path / "p.toml")).strategies == {"contrarian": 1.0}
    (tmp_path / "broken.yaml").write_text("strategies: [unclosed\n")
    with pytest.raises(PopulationError, match="not valid yaml"):
        load_population(str(tmp_path / "broken.yaml"))
    with pytest.raises(PopulationError, match="cannot read it"):
        load_population(str(tmp_path / "missing.yaml"))


def test_cli_samples_as_json_and_validates_with_one_line_per_problem(tmp_path):
    result = fleet_cli("personalities", "sample", "5", "--seed", "4", "--json")
    assert result.returncode == 0, result.stderr
    fleet = json.loads(result.stdout)
    assert [p["name"] for p in fleet] == [p.name for p in sample(5, 4, BALANCED)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategies: {contrarian: 0.5}\nrisk_tolerance: [0, 2]\n")
    result = fleet_cli("personalities", "validate", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {bad}: ") for line in lines)
    assert "Traceback" not in result.stderr
    assert fleet_cli("personalities", "validate", "contrarians").returncode == 0
    (tmp_path / "[bold]").mkdir()
    good = tmp_path / "[bold]" / "good.yaml"  # a path is named as given, not read as markup
    good.write_text("strategies: {contrarian: 1.0}\n")
    assert fleet_cli("personalities", "validate", str(good)).stdout == f"{good}: valid\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (f"strategies: {{contrarian: 1.0}}\nsectors: {{{SECTORS[0]}: 1.0e300}}\n", "finite"),
        (f"strategies: {{contrarian: 1.0}}\nsectors: {{{SECTORS[0]}: .inf}}\n", "finite"),
        ("strategies: {contrarian: .inf}\n", "finite"),
        (b"strategies: {contrarian: 1.0}\n# \xff\xfe\n", "not UTF-8"),
        ("strategies: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested too deeply"),
    ],
)
def test_files_that_would_break_a_spawn_are_refused_by_validate(tmp_path, content, reason):
    hostile = tmp_path / "hostile.yaml"
    if isinstance(content, bytes):
        hostile.write_bytes(content)
    else:
        hostile.write_text(content)
    result = fleet_cli("personalities", "validate", str(hostile))
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {hostile}: ") and reason in line, line
    spawn = fleet_cli("spawn", "1", "--population", str(hostile))  # refused before any call
    assert spawn.returncode == 2 and spawn.stderr == result.stderr


def test_a_key_that_is_a_terminal_sequence_or_a_page_long_is_shown_escaped_and_clipped(tmp_path):
    title = "\x1b]0;owned\x07" + "k" * 3000  # it retitled the operator's terminal
    red = "\x1b[31m" + "s" * 3000
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(
        yaml.safe_dump({"strategies": {"contrarian": 1.0}, title: 1, "sectors": {red: 1}})
    )
    for command in (("personalities", "validate"), ("spawn", "1", "--population")):
        result = fleet_cli(*command, str(hostile))
        assert result.returncode == 2
        assert "\x1b" not in result.stderr and "\x07" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 2 and all(len(line) < 500 for line in lines), lines  # not 3,000
        assert f"error: {hostile}: \\x1b]0;owned\\x07kkk" in result.stderr
        assert "(3,010 characters): Extra inputs are not permitted" in result.stderr
        assert "unknown sectors ['\\x1b[31msss" in result.stderr
        assert "(3,005 characters)" in result.stderr


def test_a_file_that_never_ends_is_refused_after_its_first_256_kib():
    for command in (("personalities", "validate"), ("spawn", "1", "--population")):
        result = fleet_cli(*command, "/dev/zero")  # read whole, it took all the memory there is
        assert result.returncode == 2
        assert result.stderr == "error: /dev/zero: larger than 256 KiB\n"


@pytest.mark.parametrize("caps", [{"small": 1.0}, {"large": 0.5, "small": 0.5}, None])
def test_every_sampled_agent_has_symbols_to_trade(caps):
    from feeds.universe import UNIVERSE

    population = BALANCED if caps is None else BALANCED.model_copy(update={"market_caps": caps})
    for seed in range(5):
        for p in sample(400, seed, population):
            tradable = [
                s
                for s in UNIVERSE
                if s.sector in p.sector_preferences and p.market_cap_bias in ("mixed", s.market_cap)
            ]
            assert tradable, p  # utilities and communication have no small caps
