"""The spawn's floor (`bench.floor`): agents started by the daemon's own Docker backend
come up against the stand-in gateway, one of them restarted by Docker's own policy for
crash recovery's reference, and nothing of them is left afterwards."""

import pytest

from bench.floor import FLOOR, floor, launch, stand_in
from bench.supervision import REFERENCE, docker_policy_restarts
from orchestrator.tools.harness import wait_until


@pytest.mark.docker
@pytest.mark.xdist_group("docker")
def test_the_floors_agents_heartbeat_to_the_stand_in_and_are_removed(docker_client):
    image = docker_client.images.get("agent-fleet-agent:latest").id
    seconds, cpu = floor(docker_client, image, 3, timeout=60)
    assert seconds > 0
    assert cpu["containers"] > 0  # the agents' own start-up is read
    assert cpu["bench"] > 0  # and the engine calls and the stand-in's answers
    assert not _left(docker_client, FLOOR)


@pytest.mark.docker
@pytest.mark.xdist_group("docker")
@pytest.mark.parametrize("oci_runtime", ["", "crun"])
def test_the_reference_is_the_floors_agent_restarted_by_dockers_own_policy(
    docker_client, oci_runtime
):
    """Crash recovery's reference: the same container as the daemon makes, SIGKILLed and
    restarted by Docker's `on-failure` policy, heartbeats to the stand-in again; on the
    engine's default runtime and on crun."""
    image = "agent-fleet-agent:latest"
    settings = {"agent_oci_runtime": oci_runtime}
    (seconds,) = docker_policy_restarts(docker_client, 1, image, **settings)
    assert 0 < seconds < 60
    # Under CI's load the reference was listed for a moment after the clean-up had seen it
    # gone (its removal still in progress): it must go, soon.
    wait_until(lambda: not _left(docker_client, REFERENCE), "the reference's container to go", 30)


@pytest.mark.docker
@pytest.mark.xdist_group("docker")
def test_the_floors_agents_run_on_the_oci_runtime_the_daemon_is_given(docker_client):
    image = docker_client.images.get("agent-fleet-agent:latest").id
    with stand_in(docker_client, FLOOR, agent_oci_runtime="crun") as (runtime, gateway):
        container = docker_client.containers.get(launch(runtime, image, "floor-crun"))
        assert container.attrs["HostConfig"]["Runtime"] == "crun"
        wait_until(lambda: "Bearer floor-crun" in gateway.beats, "its first beat", 60)
    assert not _left(docker_client, FLOOR)


def _left(client, prefix: str) -> list:
    """The containers left of instances whose names begin with `prefix`."""
    # sparse: the list alone; inspecting each one raced its removal (404 from the engine)
    left = client.containers.list(all=True, sparse=True, filters={"label": "fleet.managed=true"})
    return [c for c in left if c.attrs["Labels"].get("fleet.instance", "").startswith(prefix)]
