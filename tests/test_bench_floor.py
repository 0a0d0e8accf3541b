"""The spawn's floor (`bench.floor`): agents started by the daemon's own Docker backend
come up against the stand-in gateway, and nothing of them is left afterwards."""

import pytest

from bench.floor import floor


@pytest.mark.docker
@pytest.mark.xdist_group("docker")
def test_the_floors_agents_heartbeat_to_the_stand_in_and_are_removed(docker_client):
    image = docker_client.images.get("agent-fleet-agent:latest").id
    seconds, cpu = floor(docker_client, image, 3, timeout=60)
    assert seconds > 0
    assert cpu["containers"] > 0  # the agents' own start-up is read
    assert cpu["bench"] > 0  # and the engine calls and the stand-in's answers
    left = docker_client.containers.list(all=True, filters={"label": "fleet.managed=true"})
    assert not [c for c in left if c.labels.get("fleet.instance", "").startswith("benchfloor")]
