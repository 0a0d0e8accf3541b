"""Rollouts on the real Docker engine: a rebuilt agent image rolls over a trading fleet a
batch at a time, without a daemon restart; a broken one stops at the canary and rolls
back while the rest of the fleet trades on."""

import json

import pytest

from tests.rollouts import build, replacements, settled

pytestmark = pytest.mark.docker

AGENTS = 4


def image_of(client, container_id: str) -> str:
    return client.containers.get(container_id).attrs["Image"]


def test_a_new_image_rolls_in_batches_and_a_broken_one_rolls_back(
    docker_client, make_daemon, own_tag, market
):
    daemon = make_daemon(
        "docker",
        FLEET_AGENT_IMAGE=own_tag,
        FLEET_AGENT_CYCLE_SECONDS="2",
        FLEET_ROLLOUT_BATCH="0.25",
        FLEET_ROLLOUT_SETTLE_SECONDS="2",
        FLEET_ROLLOUT_DEADLINE_SECONDS="45",
        **market,
    )
    spawned = daemon.fleet("spawn", str(AGENTS), "--population", "news-hounds", "--wait")
    assert spawned.returncode == 0, spawned.stderr

    first = docker_client.images.get(own_tag).id
    second = build(docker_client, own_tag, own_tag)  # rebuilt: the daemon sees it by itself
    settled(daemon, second, "done", timeout=240)
    agents = daemon.wait_for(lambda now: all(a["phase"] == "running" for a in now), "running")
    assert {image_of(docker_client, a["container_id"]) for a in agents} == {second}
    times = sorted(t for a in agents for t in replacements(daemon, a))
    assert len(times) == AGENTS and len(set(times)) == AGENTS  # one at a time, canary first
    assert first != second
    status = daemon.fleet("rollout", "status", "--json")
    assert json.loads(status.stdout)["fleet"] == AGENTS, status.stderr

    steady = {a["id"]: a["container_id"] for a in agents}
    trading = sum(a["orders_submitted"] or 0 for a in agents)
    third = build(docker_client, own_tag, own_tag, broken=True)
    rolled_back = settled(daemon, third, "rolled_back", timeout=180)
    assert "new image" in rolled_back["reason"] and rolled_back["admitted"] == 0

    after = daemon.wait_for(
        lambda now: (
            all(a["phase"] == "running" for a in now)
            and sum(a["orders_submitted"] or 0 for a in now) > trading
        ),
        "the fleet running and trading again",
        timeout=180,
    )
    assert {image_of(docker_client, a["container_id"]) for a in after} == {second}
    kept = {a["id"]: a["container_id"] for a in after if a["container_id"] == steady[a["id"]]}
    assert len(kept) == AGENTS - 1  # only the canary was touched
    alerts = daemon.api("GET", "/v1/alerts").json()
    assert any(a["kind"] == "rollout_failed" for a in alerts)
    assert daemon.fleet("rollout", "undo").returncode == 1  # nothing in flight: one line
