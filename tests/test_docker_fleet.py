"""End to end on the real Docker engine: spawn, harden, heartbeat, retire, survive a crash."""

import subprocess
import time
from datetime import UTC, datetime

import httpx
import pytest

from orchestrator.runtime.docker import container_name
from orchestrator.settings import Settings
from orchestrator.tools.harness import FLEET, fleet_env, free_port, serve
from orchestrator.tools.scripted import ScriptedApp, payload
from platform_client import PlatformClient
from tests.conftest import CONTROLLER_KEY

pytestmark = pytest.mark.docker

LABELS = ("fleet.managed", "fleet.instance", "fleet.agent_id", "fleet.spec_hash")


def all_running(n):
    return lambda agents: len(agents) == n and all(a["phase"] == "running" for a in agents)


def ours(client, instance):
    return client.containers.list(all=True, filters={"label": f"fleet.instance={instance}"})


def test_spawn_three_hardened_containers_then_retire_one(docker_client, make_daemon, instance):
    daemon = make_daemon("docker")
    result = daemon.fleet("spawn", "3")
    assert result.returncode == 0, result.stderr
    agents = daemon.wait_for(all_running(3), "three agents heartbeating")

    containers = ours(docker_client, instance)
    assert len(containers) == 3
    by_agent = {c.labels["fleet.agent_id"]: c for c in containers}
    for agent in agents:
        container = by_agent[agent["id"]]
        attrs = container.attrs
        host = attrs["HostConfig"]
        assert container.id == agent["container_id"]
        assert container.name == container_name(instance, agent["name"])
        assert set(LABELS) <= set(container.labels)
        assert container.labels["fleet.managed"] == "true"
        assert container.labels["fleet.instance"] == instance
        assert attrs["Config"]["User"] == "10001:10001"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert host["Memory"] > 0 and host["PidsLimit"] > 0 and host["NanoCpus"] > 0
        assert host["Init"] is True
        assert host["RestartPolicy"]["Name"] == "no"
        assert host["LogConfig"]["Type"] == "json-file"
        assert "/tmp" in host["Tmpfs"]
        assert host["NetworkMode"] == "none"
        env = {e.split("=", 1)[0] for e in attrs["Config"]["Env"]}
        assert {"FLEET_AGENT_ID", "FLEET_GATEWAY_URL", "FLEET_AGENT_TOKEN"} <= env
        assert not any(
            name.startswith("FLEET_")
            for name in env - {"FLEET_AGENT_ID", "FLEET_GATEWAY_URL", "FLEET_AGENT_TOKEN"}
        )
        # non-root inside, for real
        assert container.exec_run("id -u").output.decode().strip() == "10001"

    gone = agents[0]
    result = daemon.fleet("retire", gone["id"][:8])
    assert result.returncode == 0, result.stderr
    assert {c.labels["fleet.agent_id"] for c in ours(docker_client, instance)} == {
        a["id"] for a in agents[1:]
    }
    assert {a["id"]: a["phase"] for a in daemon.agents()}[gone["id"]] == "retired"

    # A container that dies is started again, as Docker's own restart policy would.
    crashed = agents[1]
    by_agent[crashed["id"]].kill()
    replaced = daemon.wait_for(
        lambda now: any(
            a["id"] == crashed["id"]
            and a["phase"] == "running"
            and a["restarts"] == 1
            and a["container_id"] == crashed["container_id"]
            for a in now
        ),
        "the killed agent to run again in its container",
    )
    assert len(ours(docker_client, instance)) == 2
    assert sum(a["phase"] == "running" for a in replaced) == 2


def test_an_agent_joins_the_operators_network_and_a_second_create_adopts_it(
    docker_client, instance, tmp_path
):
    from orchestrator.runtime import AgentLaunch
    from orchestrator.runtime.docker import DockerRuntime

    network = docker_client.networks.create(f"{instance}-net", labels={"fleet.managed": "true"})
    settings = Settings(instance=instance, state_dir=tmp_path, docker_network=network.name)
    runtime = DockerRuntime(settings)
    launch = AgentLaunch(
        agent_id="00000001-0000-0000-0000-000000000000",
        name="netted",
        gateway_url="http://gateway:8080",
        token="t",
        image=runtime.image(),
        spec_hash="h",
    )
    try:
        first = runtime.create(launch)
        again = runtime.create(launch)  # a retried action: the same container, still one
        (container,) = ours(docker_client, instance)
        assert first.container_id == again.container_id == container.id
        assert first.state == "running"  # started; whatever came next, the events tell
        assert first.agent_id == launch.agent_id and first.spec_hash == "h"
        assert container.attrs["HostConfig"]["NetworkMode"] == network.name
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [network.name]
    finally:
        runtime.close()
        for c in ours(docker_client, instance):
            c.remove(force=True)
        network.remove()


def test_daemon_crash_adopts_containers_and_removes_orphans(docker_client, make_daemon, instance):
    daemon = make_daemon("docker")
    daemon.fleet("spawn", "3")
    agents = daemon.wait_for(all_running(3), "three agents heartbeating")
    before = {c.id: c.attrs["State"]["StartedAt"] for c in ours(docker_client, instance)}

    daemon.kill()
    image = docker_client.images.get(Settings().agent_image)
    orphan = docker_client.containers.create(
        image.id,
        name=f"fleet-{instance}-stray",
        labels={"fleet.managed": "true", "fleet.instance": instance},
        network_mode="host",
    )
    daemon.start()
    daemon.wait_for(
        lambda _agents: orphan.id not in {c.id for c in ours(docker_client, instance)},
        "the orphan to be removed",
    )
    after = daemon.wait_for(all_running(3), "the same three agents still running")
    containers = ours(docker_client, instance)
    # same containers, never restarted, no duplicates
    assert {c.id: c.attrs["State"]["StartedAt"] for c in containers} == before
    assert {a["container_id"] for a in after} == set(before)
    assert {a["id"] for a in after} == {a["id"] for a in agents}
    kinds = {
        e["kind"] for a in after for e in daemon.api("GET", f"/v1/agents/{a['id']}/events").json()
    }
    assert "container_replaced" not in kinds

    result = daemon.fleet("spawn", "2")
    assert result.returncode == 0, result.stderr
    final = daemon.wait_for(all_running(5), "five agents heartbeating")
    assert len(ours(docker_client, instance)) == 5
    assert len({a["container_id"] for a in final}) == 5


def test_spawn_against_fleet_sandbox_then_retire_all(
    docker_client, make_daemon, instance, fleet_sandbox
):
    daemon = make_daemon(
        "docker", FLEET_PLATFORM_URL=fleet_sandbox, FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY
    )
    assert daemon.fleet("spawn", "2").returncode == 0
    agents = daemon.wait_for(all_running(2), "two agents heartbeating")
    controller = PlatformClient(fleet_sandbox, controller_key=CONTROLLER_KEY)
    accounts = controller.controller_agents()
    assert {a["idempotency_key"] for a in accounts} == {a["id"] for a in agents}
    assert all(a["last_login_at"] for a in accounts)  # the containers logged in themselves
    assert all(a["last_error"] is None for a in daemon.agents())
    for container in ours(docker_client, instance):
        env = "\n".join(container.attrs["Config"]["Env"])
        assert CONTROLLER_KEY not in env and "password" not in env.lower()

    result = daemon.fleet("retire", "--all")
    assert result.returncode == 0, result.stderr
    assert ours(docker_client, instance) == []
    assert [a["status"] for a in controller.controller_agents()] == ["disabled", "disabled"]
    first = accounts[0]  # replaying its creation hands back the password, to try it
    strategy = next(a["strategy"] for a in agents if a["id"] == first["idempotency_key"])
    creds = controller.create_agent(
        first["idempotency_key"], first["display_name"], {"strategy": strategy}
    )
    login = httpx.post(
        f"{fleet_sandbox}/api/auth/login",
        json={"username": creds.username, "password": creds.password},
    )
    assert login.status_code == 403


def test_an_agent_killed_mid_cycle_never_fills_twice(
    docker_client, make_daemon, instance, fleet_sandbox
):
    # Fresh Apple earnings news from a NewsAPI-speaking server: event-driven agents buy.
    news = ScriptedApp()
    article = {
        **payload("newsapi_everything.json")["articles"][0],
        "publishedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    news.on("/v2/everything", (200, {"status": "ok", "totalResults": 1, "articles": [article]}, {}))
    population = {
        "strategies": {"event_driven": 1.0},
        "frequencies": {"day": 1.0},
        "sectors": {"technology": 1.0},
        "market_caps": {"large": 1.0},
        "sectors_per_agent": [1, 1],
    }
    with serve(news) as news_url:
        daemon = make_daemon(
            "docker",
            FLEET_PLATFORM_URL=fleet_sandbox,
            FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
            FLEET_NEWS_PROVIDER="newsapi",
            FLEET_MARKET_HOURS="always",  # a live wire, but trading on any day of the week
            FLEET_NEWSAPI_KEY="k",
            FLEET_NEWSAPI_URL=news_url,
        )
        spawned = daemon.api(
            "POST", "/v1/agents", json={"count": 1, "seed": 1, "population": population}
        )
        assert spawned.status_code == 201, spawned.text
        (agent,) = daemon.wait_for(all_running(1), "the agent heartbeating")
        controller = PlatformClient(fleet_sandbox, controller_key=CONTROLLER_KEY)
        (account,) = controller.controller_agents()
        creds = controller.create_agent(
            account["idempotency_key"], account["display_name"], {"strategy": "event_driven"}
        )
        trader = PlatformClient(fleet_sandbox)
        trader.login(creds.username, creds.password)
        deadline = time.monotonic() + 60
        while not trader.orders() and time.monotonic() < deadline:
            time.sleep(0.5)
        (bought,) = trader.orders()
        assert (bought.symbol, bought.side, bought.status) == ("AAPL", "buy", "filled")

        docker_client.containers.get(agent["container_id"]).kill()  # SIGKILL, mid-cycle
        daemon.wait_for(
            lambda now: (
                now[0]["phase"] == "running"
                and now[0]["restarts"] == 1
                and now[0]["last_cycle"] is not None
            ),
            "the agent heartbeating again after its restart",
        )
        time.sleep(3)  # a few cycles of the replacement
        assert [o.order_id for o in trader.orders()] == [bought.order_id]
        assert trader.portfolio().positions[0].qty == bought.filled_qty


def test_agents_run_on_the_oci_runtime_the_operator_names(docker_client, make_daemon, instance):
    daemon = make_daemon("docker", FLEET_AGENT_OCI_RUNTIME="crun")
    assert daemon.fleet("spawn", "2").returncode == 0
    crashed, _ = daemon.wait_for(all_running(2), "two agents heartbeating on crun")
    containers = ours(docker_client, instance)
    assert [c.attrs["HostConfig"]["Runtime"] for c in containers] == ["crun", "crun"]
    assert containers[0].exec_run("id -u").output.decode().strip() == "10001"
    doctor = daemon.fleet("doctor").stdout.splitlines()
    assert any(
        line.startswith("ok") and "oci runtime" in line and "crun" in line for line in doctor
    )
    assert any(line.startswith("ok") and "agent limits" in line for line in doctor)

    # killed, it is started again in its container, on the same runtime
    docker_client.containers.get(crashed["container_id"]).kill()
    daemon.wait_for(
        lambda now: (
            any(a["id"] == crashed["id"] and a["restarts"] == 1 for a in now)
            and all_running(2)(now)
        ),
        "the killed agent to run again",
    )
    assert (
        docker_client.containers.get(crashed["container_id"]).attrs["HostConfig"]["Runtime"]
        == "crun"
    )


def up_and_doctor(instance: str, tmp_path, **settings: str) -> list[subprocess.CompletedProcess]:
    """`fleet up` and `fleet doctor` on a Docker fleet with these settings, which `up` must
    refuse before it starts anything."""
    env = fleet_env(
        FLEET_STATE_DIR=str(tmp_path / "state"),
        FLEET_INSTANCE=instance,
        FLEET_PORT=str(free_port()),
        FLEET_RUNTIME="docker",
        **settings,
    )
    return [
        subprocess.run([*FLEET, command], env=env, capture_output=True, text=True, timeout=60)
        for command in ("up", "doctor")
    ]


def test_an_agent_image_the_engine_cannot_name_is_refused_before_any_agent_starts(
    docker_client, instance, tmp_path
):
    # it started, and each agent stayed pending while every round failed on the name
    up, doctor = up_and_doctor(instance, tmp_path, FLEET_AGENT_IMAGE="Agent-Fleet:Latest")
    assert up.returncode == 1
    (line,) = up.stderr.splitlines()
    assert line.startswith(
        "error: FLEET_AGENT_IMAGE='Agent-Fleet:Latest' is not an image the engine can name ("
    ), line
    assert "must be lowercase" in line
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    (check,) = [line for line in doctor.stdout.splitlines() if "agent image" in line]
    assert check.startswith("FAIL") and "'Agent-Fleet:Latest'" in check, check
    assert "must be lowercase" in " ".join(doctor.stdout.split())  # however rich wraps it
    assert ours(docker_client, instance) == []


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [  # each started a daemon whose every agent crash-looped on it
        ("FLEET_AGENT_MEMORY_LIMIT", "96q", "should specify the units"),
        ("FLEET_AGENT_MEMORY_LIMIT", "5m", "at least 6m, the engine's smallest"),
        ("FLEET_AGENT_MEMORY_LIMIT", "0", "(0 would leave agents with no limit at all)"),
        ("FLEET_AGENT_CPUS", "4096", "CPUs, and an agent can be given at most that many"),
        ("FLEET_DOCKER_NETWORK", "nosuchnet", "the engine has no network of that name"),
    ],
)
def test_an_agent_setting_every_start_would_fail_on_is_refused_by_up_and_doctor(
    docker_client, instance, tmp_path, setting, value, said
):
    up, doctor = up_and_doctor(instance, tmp_path, **{setting: value})
    assert up.returncode == 1
    (line,) = up.stderr.splitlines()
    assert line.startswith(f"error: {setting}=") and said in line, line
    assert f"={value!r}: " in line or f"={value}: " in line, line  # numbers are not quoted
    assert ours(docker_client, instance) == []
    # `fleet doctor` had said "ok" to each
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    checked = " ".join(doctor.stdout.split())  # however rich wraps it
    assert f"FAIL agent limits {line.removeprefix('error: ')}" in checked, checked


def test_an_oci_runtime_the_engine_lacks_is_refused_before_any_agent_starts(
    docker_client, instance, tmp_path
):
    up, doctor = up_and_doctor(
        instance,
        tmp_path,
        FLEET_AGENT_OCI_RUNTIME="nosuch",
        FLEET_SWARM_DOOR_IMAGE="nosuch-door:latest",  # not Docker's concern: not checked
    )
    for result in (up, doctor):
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
    (line,) = up.stderr.splitlines()
    assert line.startswith(
        "error: FLEET_AGENT_OCI_RUNTIME=nosuch: the engine has no runtime of that name (it has "
    ), line
    assert "runc" in line and "dockerd --add-runtime nosuch=PATH" in line
    (check,) = [line for line in doctor.stdout.splitlines() if "oci runtime" in line]
    assert check.startswith("FAIL") and "'nosuch'" in check and "runc" in check, check
    assert "gateway door" not in doctor.stdout
    assert ours(docker_client, instance) == []
