"""`GET /metrics` of a live daemon: parsed back, and checked by Prometheus' own promtool."""

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import missing


def scrape(daemon):
    response = daemon.api("GET", "/metrics", token="")  # no token needed, like /healthz
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, {f.name: f for f in text_string_to_metric_families(response.text)}


def test_metrics_describe_the_fleet_and_pass_promtool(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "2", "--strategy", "contrarian")
    agents = daemon.wait_for(
        lambda a: len(a) == 2 and all(x["phase"] == "running" for x in a), "two running"
    )
    daemon.fleet("pause")
    text, families = scrape(daemon)

    phases = {s.labels["phase"]: s.value for s in families["fleet_agents"].samples}
    assert phases["running"] == 2 and phases["crashloop"] == 0
    assert families["fleet_paused"].samples[0].value == 1
    assert families["fleet_market_open"].samples[0].value == 1  # the simulated market
    assert "fleet_platform_reachable" not in families  # no platform is configured
    ages = families["fleet_agent_heartbeat_age_seconds"].samples
    assert {s.labels["name"] for s in ages} == {a["name"] for a in agents}
    assert all(0 <= s.value < 60 for s in ages)
    restarts = families["fleet_agent_restarts"].samples
    assert {s.labels["strategy"] for s in restarts} == {"contrarian"}
    assert all(s.value == 0 for s in restarts if s.name == "fleet_agent_restarts_total")
    assert "simulated" in {
        s.labels["provider"] for s in families["fleet_gateway_cache_hits"].samples
    }
    assert {s.labels["direction"] for s in families["fleet_llm_tokens_today"].samples} == {
        "input",
        "output",
    }
    ticks = {
        s.labels["scope"]: s.value
        for s in families["fleet_reconcile_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert ticks["full"] >= 1  # the first tick plans for every agent
    planned = {
        s.labels["scope"]: s.value
        for s in families["fleet_reconcile_planned_agents"].samples
        if s.name.endswith("_total")
    }
    assert planned["full"] >= 2  # this runtime tells no events: every tick plans for all

    # A retired agent counts in its phase, and has no gauges of its own any more.
    gone, kept = agents
    assert daemon.fleet("retire", gone["name"], "--wait").returncode == 0
    _, after = scrape(daemon)
    phases = {s.labels["phase"]: s.value for s in after["fleet_agents"].samples}
    assert (phases["retired"], phases["running"]) == (1, 1)
    ages = after["fleet_agent_heartbeat_age_seconds"].samples
    assert {s.labels["name"] for s in ages} == {kept["name"]}
    fleet = daemon.api("GET", "/v1/fleet").json()
    assert (fleet["by_phase"]["retired"], fleet["total"], fleet["desired"]) == (1, 2, 1)

    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool is not installed (Debian package prometheus)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
