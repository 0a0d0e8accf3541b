"""Fault injection on the real Docker engine and the real sandbox (issue 6, DESIGN §3).

Each scenario breaks one thing and ends with the same invariants (`assert_converged`):
every desired agent running and heartbeating, one container per agent and no orphans,
one account per agent, no order filled twice; then it reads the store's timeline for
the explanation of what happened. The engine restart runs last: it touches everything.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from orchestrator.lifecycle import FAILURES
from orchestrator.tools.harness import (
    AGENT_PYTHON,
    FLEET,
    KILL_AGENT,
    Daemon,
    free_port,
    wait_until,
)
from orchestrator.tools.invariants import containers, filled, trading_accounts
from tests.conftest import CONTROLLER_KEY
from tests.faults.conftest import FAST, LIVE, assert_converged, events, healthy

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


def start_fleet(make_daemon, n: int, **env: str):
    daemon = make_daemon("docker", **{**FAST, **env})
    result = daemon.fleet("spawn", str(n))
    assert result.returncode == 0, result.stderr
    return daemon, daemon.wait_for(healthy(n), f"{n} healthy agents")


def restarted(daemon, agent: dict) -> dict:
    """The agent once it heartbeats again after one more restart."""
    again = daemon.wait_for(
        lambda now: any(
            a["id"] == agent["id"] and a["phase"] == "running" and a["restarts"] > agent["restarts"]
            for a in now
        ),
        f"{agent['name']} running again after a restart",
    )
    return next(a for a in again if a["id"] == agent["id"])


def in_new_container(daemon, agent: dict) -> None:
    assert restarted(daemon, agent)["container_id"] not in (None, agent["container_id"])


def started_again(daemon, agent: dict) -> None:
    """Its exited container is started again, as Docker's own restart policy would."""
    assert restarted(daemon, agent)["container_id"] == agent["container_id"]


def last(daemon, agent_id: str, kind: str) -> dict:
    found = [e for e in events(daemon, agent_id) if e["kind"] == kind]
    assert found, f"no {kind!r} event in {[e['kind'] for e in events(daemon, agent_id)]}"
    return found[-1]


def restarts(daemon) -> dict[str, int]:
    return {a["id"]: a["restarts"] for a in daemon.agents() if a["phase"] in LIVE}


# -- 1-3: the agent's process or container goes away -------------------------------


def test_sigkill_of_the_agent_process_inside_its_container(docker_client, make_daemon, instance):
    daemon, (victim, bystander) = start_fleet(make_daemon, 2)
    container = docker_client.containers.get(victim["container_id"])
    container.exec_run([AGENT_PYTHON, "-c", KILL_AGENT], user="10001")
    started_again(daemon, victim)
    assert_converged(daemon, docker_client, instance, 2)
    assert "exited with code 137" in last(daemon, victim["id"], "exited")["message"]
    assert restarts(daemon) == {victim["id"]: 1, bystander["id"]: 0}


def test_docker_kill_of_an_agent_container(docker_client, make_daemon, instance):
    daemon, (victim, _) = start_fleet(make_daemon, 2)
    docker_client.containers.get(victim["container_id"]).kill()
    started_again(daemon, victim)
    assert_converged(daemon, docker_client, instance, 2)
    message = last(daemon, victim["id"], "exited")["message"]
    assert "exited with code 137" in message and "restart 1 (failure 1 in a row) now" in message


def test_docker_rm_of_an_agent_container(docker_client, make_daemon, instance):
    daemon, (victim, _) = start_fleet(make_daemon, 2)
    docker_client.containers.get(victim["container_id"]).remove(force=True)
    in_new_container(daemon, victim)
    assert_converged(daemon, docker_client, instance, 2)
    assert "its workload disappeared" in last(daemon, victim["id"], "vanished")["message"]


# -- 4-6: agents that misbehave ----------------------------------------------------


def test_an_agent_over_its_memory_limit_is_recorded_as_oom_killed(
    docker_client, make_daemon, instance, fault_image
):
    hog = fault_image.build(
        [AGENT_PYTHON, "-c", "x = b'x' * (512 * 2**20)\nimport time\ntime.sleep(60)"]
    )
    daemon = make_daemon("docker", FLEET_AGENT_IMAGE=hog, **FAST)
    daemon.fleet("spawn", "1")
    (agent,) = daemon.wait_for(lambda a: a and a[0]["restarts"] >= 1, "the first OOM kill")
    oom = last(daemon, agent["id"], "oom_killed")["message"]
    assert "exceeding its memory limit (OOM" in oom
    fault_image.heal()
    assert_converged(daemon, docker_client, instance, 1)


def test_a_hung_agent_is_restarted_after_the_heartbeat_timeout(
    docker_client, make_daemon, instance
):
    daemon, (victim, bystander) = start_fleet(make_daemon, 2)
    docker_client.containers.get(victim["container_id"]).pause()
    in_new_container(daemon, victim)
    assert_converged(daemon, docker_client, instance, 2)
    silence = last(daemon, victim["id"], "unhealthy")["message"]
    seconds = int(re.search(r"no heartbeat for (\d+)s", silence).group(1))
    assert seconds >= int(FAST["FLEET_HEARTBEAT_TIMEOUT_SECONDS"])  # not before the timeout
    assert restarts(daemon)[bystander["id"]] == 0


def test_a_crash_loop_backs_off_alerts_once_and_reports_recovery(
    docker_client, make_daemon, instance, fault_image, webhook
):
    hook_url, seen = webhook
    crasher = fault_image.build([AGENT_PYTHON, "-c", "raise SystemExit(7)"])
    daemon = make_daemon(
        "docker", FLEET_AGENT_IMAGE=crasher, FLEET_ALERT_WEBHOOK_URL=hook_url, **FAST
    )
    daemon.fleet("spawn", "1")
    (agent,) = daemon.wait_for(lambda a: a and a[0]["phase"] == "crashloop", "a crash loop")

    timeline = events(daemon, agent["id"])
    # Every failure counts: under load a restart in place may fail and be a new start,
    # which can fail in turn (start_failed) while the engine is slow; each backs off alike.
    failures = [e for e in timeline if e["kind"] in FAILURES]
    planned = [re.search(r"\) (now|in (\d+)s)$", e["message"]) for e in failures]
    delays = [0 if m.group(1) == "now" else int(m.group(2)) for m in planned]
    told = [(e["kind"], e["message"]) for e in failures]
    assert delays[:4] == [0, 1, 2, 4], told  # immediate, then doubling from 1 s
    exits = [e for e in failures if e["kind"] == "exited"]
    assert exits and all("exited with code 7" in e["message"] for e in exits), told
    starts = [datetime.fromisoformat(e["at"]) for e in timeline if e["kind"] == "container_started"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert all(gap >= delay for gap, delay in zip(gaps, delays, strict=False))

    def alerts(kind: str) -> list[dict]:
        return [body for body in (json.loads(s.body) for s in seen) if body["kind"] == kind]

    wait_until(lambda: alerts("crashloop"), "the crash-loop alert")
    time.sleep(3)  # more failures in the same episode: still one alert
    (alert,) = alerts("crashloop")
    assert agent["name"] in alert["text"] and "crash-looping" in alert["text"]

    fault_image.heal()
    wait_until(lambda: alerts("recovered"), "the recovery message", timeout=90)
    assert len(alerts("crashloop")) == 1
    assert_converged(daemon, docker_client, instance, 1)
    assert daemon.agents()[0]["failures"] == 0


# -- 7: the daemon dies in the middle of a scale-up ---------------------------------


def test_daemon_killed_half_way_through_scale_20_converges_after_restart(
    docker_client, make_daemon, instance, fleet_sandbox
):
    daemon = make_daemon(
        "docker",
        FLEET_PLATFORM_URL=fleet_sandbox,
        FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
        **{**FAST, "FLEET_HEARTBEAT_TIMEOUT_SECONDS": "30"},
    )
    result = daemon.fleet("scale", "20")
    assert result.returncode == 0, result.stderr
    wait_until(
        lambda: len(containers(docker_client, instance)) >= 5, "a few containers", every=0.05
    )
    daemon.kill()
    assert len(containers(docker_client, instance)) < 20, "the scale-up was already complete"

    daemon.start()
    agents = assert_converged(daemon, docker_client, instance, 20, fleet_sandbox)
    assert len(agents) == 20
    again = daemon.fleet("scale", "20")
    assert "already has 20" in again.stdout
    assert len(daemon.agents()) == 20


# -- 8, 10: the platform goes away; the kill switch -------------------------------


def total_filled(url: str, agents: list[dict]) -> int:
    return sum(len(orders) for orders in filled(url, CONTROLLER_KEY, agents).values())


def test_platform_down_for_30s_agents_keep_running_and_trade_again(
    docker_client, trading, sandbox_process, instance
):
    daemon = trading(3)
    agents = daemon.wait_for(healthy(3), "three traders")
    wait_until(lambda: total_filled(sandbox_process.url, agents) >= 3, "some trading", 90)

    sandbox_process.stop()
    time.sleep(30)
    during = daemon.agents()
    platform = daemon.api("GET", "/v1/fleet").json()["platform"]
    sandbox_process.start()
    assert all(a["phase"] == "running" for a in during)
    assert any(a["last_error"] for a in during)  # they noticed, and kept their process
    assert platform["reachable"] is False and platform["failed_calls"] >= 1  # and so did we

    before = total_filled(sandbox_process.url, agents)
    wait_until(lambda: total_filled(sandbox_process.url, agents) > before, "trading again", 90)
    assert daemon.api("GET", "/v1/fleet").json()["platform"]["reachable"] is True
    assert_converged(daemon, docker_client, instance, 3, sandbox_process.url)
    assert set(restarts(daemon).values()) == {0}


def test_a_hostile_agent_and_a_second_daemon_change_nothing_for_the_fleet(
    docker_client, trading, sandbox_process, instance
):
    daemon = trading(3)
    agents = daemon.wait_for(healthy(3), "three traders")
    wait_until(lambda: total_filled(sandbox_process.url, agents) >= 3, "some trading", 90)

    # A second daemon on the same fleet refuses, in one line, and touches nothing.
    intruder = Daemon(daemon.state_dir, free_port(), instance, "docker", daemon.extra_env)
    second = subprocess.run(
        [*FLEET, "up"], env=intruder.env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1 and "another daemon runs the fleet" in second.stderr

    # One agent's token, stolen or misused: a flood, then controller calls through the relay.
    noisy = daemon.agent_token(agents[0]["id"])
    with httpx.Client(base_url=daemon.url, headers={"Authorization": f"Bearer {noisy}"}) as http:
        answers = {http.get("/v1/feed/universe").status_code for _ in range(150)}
        assert answers <= {200, 429}  # served or held to its rate, never an error
        key = {"X-Controller-Key": CONTROLLER_KEY}
        create = {"idempotency_key": "stolen", "display_name": "Stolen"}
        for _ in range(3):
            sent = http.post("/v1/platform/api/controller/create-agent", json=create, headers=key)
            assert sent.status_code in (403, 429)

    before = total_filled(sandbox_process.url, agents)
    wait_until(lambda: total_filled(sandbox_process.url, agents) > before, "trading on", 90)
    assert_converged(daemon, docker_client, instance, 3, sandbox_process.url)  # one account each
    assert set(restarts(daemon).values()) == {0}


def test_pause_stops_every_order_until_resume(docker_client, trading, sandbox_process, instance):
    daemon = trading(3)
    agents = daemon.wait_for(healthy(3), "three traders")
    wait_until(lambda: total_filled(sandbox_process.url, agents) >= 3, "some trading", 90)

    paused_at = datetime.now(UTC)
    assert daemon.fleet("pause").returncode == 0
    daemon.wait_for(
        lambda now: all(datetime.fromisoformat(a["last_heartbeat_at"]) > paused_at for a in now),
        "every agent to hear of the pause",
    )
    held = total_filled(sandbox_process.url, agents)
    time.sleep(8)  # sixteen cycles, eight market minutes
    assert total_filled(sandbox_process.url, agents) == held
    assert daemon.api("GET", "/v1/fleet").json()["paused"] is True

    assert daemon.fleet("resume").returncode == 0
    wait_until(lambda: total_filled(sandbox_process.url, agents) > held, "trading again", 90)
    assert_converged(daemon, docker_client, instance, 3, sandbox_process.url)


def test_retire_flatten_sells_the_positions_plain_retire_leaves_them(
    docker_client, trading, sandbox_process, instance
):
    daemon = trading(2)
    agents = daemon.wait_for(healthy(2), "two traders")
    url = sandbox_process.url

    def holdings() -> dict[str, dict[str, float]]:
        return {
            agent_id: {p.symbol: p.qty for p in client.portfolio().positions}
            for agent_id, client in trading_accounts(url, CONTROLLER_KEY, agents).items()
        }

    def frozen_books() -> dict[str, dict[str, float]] | None:
        """Both agents' positions, frozen by the kill switch; None (and trading again) if
        one of them sold out before it heard of the pause."""
        wait_until(lambda: len(held := holdings()) == 2 and all(held.values()), "positions", 90)
        paused_at = datetime.now(UTC)
        assert daemon.fleet("pause").returncode == 0  # freeze the books; retirement still sells
        daemon.wait_for(
            lambda now: all(
                datetime.fromisoformat(a["last_heartbeat_at"]) > paused_at for a in now
            ),
            "every agent to hear of the pause",
        )
        time.sleep(1)  # a cycle in flight when the pause was heard has finished
        books = holdings()
        if all(books.values()):
            return books
        assert daemon.fleet("resume").returncode == 0
        return None

    books = wait_until(frozen_books, "both agents holding positions while paused", 300, 0)
    flat, kept = agents

    result = daemon.fleet("retire", flat["name"], "--flatten")
    assert result.returncode == 0, result.stderr
    sold = last(daemon, flat["id"], "flattened")["message"]
    assert sold in result.stdout
    assert sorted(re.findall(r"([A-Z]+) [\d.]+", sold)) == sorted(books[flat["id"]])

    result = daemon.fleet("retire", kept["name"])
    assert result.returncode == 0, result.stderr
    assert f"{len(books[kept['id']])} open positions left as they are" in result.stdout
    assert trading_accounts(url, CONTROLLER_KEY, agents) == {}  # both accounts disabled
    assert containers(docker_client, instance) == []


# -- 9: the Docker engine restarts (last: it stops every container on the machine) ---


def _dockerd_pid() -> int | None:
    found = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


@pytest.mark.serial
def test_docker_engine_restart_the_daemon_survives_and_the_fleet_returns(
    docker_client, make_daemon, instance
):
    pid = _dockerd_pid()
    if pid is None or os.geteuid() != 0:
        pytest.fail("restarting the Docker engine needs a root-run dockerd on this machine")
    daemon, agents = start_fleet(make_daemon, 2)

    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), "dockerd to stop", 60)
    assert daemon.api("GET", "/healthz").status_code == 200  # serving while the engine is gone
    subprocess.run(["bash", str(REPO / "scripts/start-dockerd.sh")], check=True, timeout=90)

    assert_converged(daemon, docker_client, instance, 2)
    assert daemon.process.poll() is None
    for agent in agents:
        assert "exited with code" in last(daemon, agent["id"], "exited")["message"]
