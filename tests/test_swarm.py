"""The fleet on a real two-node Swarm: services spread over both nodes, heartbeating and
trading through the gateway's door; no token anywhere an operator can look; Swarm owns
restarts; a drained node's agents move; a killed daemon adopts every service; retiring
leaves nothing behind."""

import json
import secrets
import subprocess

import pytest

from orchestrator.runtime.placement import admits, parse
from orchestrator.runtime.swarm import LABEL_ROLE
from orchestrator.tools.harness import FLEET, fleet_env, free_port, wait_until
from platform_client import PlatformClient
from tests.conftest import CONTROLLER_KEY
from tests.rollouts import build, settled
from tests.trader import Trader

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("swarm")]

AGENTS = 6


def services_of(client, instance: str) -> list:
    """The instance's agent services (the door has no agent id)."""
    found = client.services.list(filters={"label": f"fleet.instance={instance}"})
    return [s for s in found if "fleet.agent_id" in s.attrs["Spec"]["Labels"]]


def running_nodes(client, instance: str) -> dict[str, str]:
    """Service ID -> hostname of the node running its task."""
    hostnames = {n.id: n.attrs["Description"]["Hostname"] for n in client.nodes.list()}
    placed = {}
    for service in services_of(client, instance):
        for task in service.tasks({"desired-state": "running"}):
            if task["Status"]["State"] == "running":
                placed[service.id] = hostnames[task["NodeID"]]
    return placed


def all_running(agents: list[dict]) -> bool:
    return len(agents) == AGENTS and all(a["phase"] == "running" for a in agents)


def test_a_fleet_on_two_nodes(swarm, docker_client, make_daemon, instance, market, own_tag):
    node2, encrypted = swarm
    manager = docker_client.info()["Name"]
    platform_url = market["FLEET_PLATFORM_URL"]
    daemon = make_daemon(
        "swarm",
        FLEET_AGENT_IMAGE=own_tag,
        FLEET_AGENT_CYCLE_SECONDS="2",
        FLEET_ROLLOUT_BATCH="0.34",
        FLEET_ROLLOUT_SETTLE_SECONDS="2",
        FLEET_ROLLOUT_DEADLINE_SECONDS="40",
        FLEET_SWARM_ENCRYPTED=str(encrypted).lower(),
        **market,
    )
    assert daemon.fleet("spawn", str(AGENTS), "--population", "news-hounds").returncode == 0
    agents = daemon.wait_for(all_running, "six agents heartbeating", timeout=180)

    # One hardened single-replica service per agent, spread over both nodes.
    services = services_of(docker_client, instance)
    assert len(services) == AGENTS
    assert {a["container_id"] for a in agents} == {s.id for s in services}
    for service in services:
        spec = service.attrs["Spec"]
        task = spec["TaskTemplate"]
        container = task["ContainerSpec"]
        assert spec["Labels"]["fleet.instance"] == instance
        assert spec["Mode"]["Replicated"]["Replicas"] == 1
        assert container["User"] == "10001:10001" and container["ReadOnly"] is True
        assert container["CapabilityDrop"] == ["ALL"] and container["Init"] is True
        assert task["Resources"]["Limits"]["Pids"] > 0
        assert task["RestartPolicy"]["Condition"] == "on-failure"
        assert task["Placement"]["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.id"}}]
        assert [n["Target"] for n in task["Networks"]] == [
            docker_client.networks.get(f"fleet-{instance}").id
        ]
    network = docker_client.networks.get(f"fleet-{instance}").attrs
    assert network["Internal"] is True
    assert ("encrypted" in network["Options"]) is encrypted

    def every_task_running() -> dict[str, str] | None:
        placed = running_nodes(docker_client, instance)
        return placed if len(placed) == AGENTS else None

    placed = wait_until(every_task_running, "every task running")
    assert set(placed.values()) == {manager, "node2"}
    listing = daemon.fleet("ls")
    assert "NODE" in listing.stdout and "node2" in listing.stdout

    # All on the sandbox through the door and the relay (each reports the equity its
    # platform account answered), and trading from both nodes: whether one given agent
    # finds a trade within minutes is up to its news, not to the fleet.
    daemon.wait_for(
        lambda now: (
            all(a["equity"] is not None for a in now)
            and {a["node"] for a in now if a["orders_submitted"]} == {manager, "node2"}
        ),
        "every agent on the platform and orders from both nodes",
        timeout=240,
    )

    # Confined: from an agent, the door answers and nothing else does (here the manager's
    # Swarm port on the address this test gave it).
    local = docker_client.containers.list(
        filters={"label": f"fleet.instance={instance}", "status": "running"}
    )
    agent_container = next(c for c in local if "fleet.agent_id" in c.labels)

    def connects(host: str, port: int) -> bool:
        probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=3)"
        return agent_container.exec_run(["/opt/agent/bin/python", "-c", probe]).exit_code == 0

    assert connects(f"fleet-{instance}-gateway", 8080)
    assert not connects("10.231.0.1", 2377)
    # The door's task leaves no anonymous volume behind (its image declares one)
    door = next(c for c in local if c.labels.get(LABEL_ROLE) == "door")
    assert [m["Type"] for m in door.attrs["Mounts"] if m["Type"] == "volume"] == []

    # No token in `service inspect`, in `docker inspect` on either node, or in the logs.
    tokens = [daemon.agent_token(a["id"]) for a in agents]
    inspected = json.dumps([s.attrs for s in services])
    for client in (docker_client, node2):
        for container in client.containers.list(filters={"label": f"fleet.instance={instance}"}):
            inspected += json.dumps(container.attrs)
    logs = daemon.log_path.read_text()
    for service in services:
        logs += b"".join(service.logs(stdout=True, stderr=True)).decode(errors="replace")
    for token in tokens:
        assert token not in inspected and token not in logs

    # A task killed on node2 is replaced by Swarm; we only count it.
    victim_id = next(service for service, node in placed.items() if node == "node2")
    victim = next(a for a in agents if a["container_id"] == victim_id)
    (container,) = node2.containers.list(
        filters={"label": f"fleet.agent_id={victim['id']}", "status": "running"}
    )
    container.kill()
    counted = daemon.wait_for(
        lambda now: any(a["id"] == victim["id"] and a["restarts"] >= 1 for a in now),
        "the failure counted",
    )
    assert {a["container_id"] for a in counted} == {s.id for s in services}  # same services
    wait_until(every_task_running, "Swarm's restart")

    # Draining node2 moves its agents to the manager.
    (drained,) = docker_client.nodes.list(filters={"name": "node2"})
    drained.update({**drained.attrs["Spec"], "Availability": "drain"})
    try:
        wait_until(
            lambda: (
                set(running_nodes(docker_client, instance).values()) == {manager}
                and len(running_nodes(docker_client, instance)) == AGENTS
            ),
            "every task on the manager",
            timeout=120,
        )
        daemon.wait_for(
            lambda now: all(a["node"] == manager for a in now) and all_running(now),
            "the fleet heartbeating from the manager",
            timeout=120,
        )
    finally:
        drained.reload()
        drained.update({**drained.attrs["Spec"], "Availability": "active"})

    # SIGKILL the daemon; an orphan service appears meanwhile; the restart adopts
    # every service, restarts no task, and removes the orphan.
    before = {a["id"]: (a["container_id"], a["restarts"]) for a in daemon.agents()}
    daemon.kill()
    orphan = docker_client.services.create(
        "agent-fleet-agent:latest",
        name=f"fleet-{instance}-orphan",
        labels={"fleet.managed": "true", "fleet.instance": instance, "fleet.agent_id": "x" * 8},
        networks=[f"fleet-{instance}"],
    )
    daemon.start()
    wait_until(
        lambda: orphan.id not in {s.id for s in services_of(docker_client, instance)},
        "the orphan removed",
    )
    after = daemon.wait_for(all_running, "the fleet after the restart", timeout=60)
    assert {a["id"]: (a["container_id"], a["restarts"]) for a in after} == before

    # A rebuilt image rolls over the services a batch at a time, each updated in place;
    # a broken one stops at the canary and is rolled back.
    def images() -> dict[str, str]:
        return {
            s.id: s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
            for s in services_of(docker_client, instance)
        }

    ids = set(images())
    for broken, state in ((False, "done"), (True, "rolled_back")):
        # every node has the image before its tag moves (there is no registry)
        image = build(docker_client, own_tag, f"{own_tag}-next", broken=broken)
        node2.images.load(b"".join(docker_client.images.get(image).save()))
        docker_client.images.get(image).tag(own_tag)
        settled(daemon, image, state, timeout=300)
        if not broken:
            second = image
            assert set(images().values()) == {second} and set(images()) == ids
    wait_until(lambda: set(images().values()) == {second}, "the canary back on the old image")
    assert set(images()) == ids  # the same services throughout
    # The canaries' failures count: they may be in a crash loop until a healthy stretch
    after = daemon.wait_for(
        lambda now: all((a["heartbeat_age_seconds"] or 99) < 10 for a in now),
        "the whole fleet heartbeating after the rollouts",
    )

    # Fills: each client_order_id once in every account, through the restarts and rollouts
    # (which agents traded is up to their news: the fleet as a whole did).
    placed_orders = 0
    for agent in after:
        orders = Trader(daemon, agent).call("GET", "api/trading/orders").json()
        ids = [order["client_order_id"] for order in orders]
        assert len(ids) == len(set(ids))
        placed_orders += len(ids)
    assert placed_orders > 0

    # Retire one, then all: no agent service and no secret left; accounts disabled.
    assert daemon.fleet("retire", after[0]["id"][:8]).returncode == 0
    assert daemon.fleet("retire", "--all").returncode == 0
    assert services_of(docker_client, instance) == []
    assert docker_client.secrets.list(filters={"label": f"fleet.instance={instance}"}) == []
    accounts = PlatformClient(platform_url, controller_key=CONTROLLER_KEY).controller_agents()
    assert len(accounts) == AGENTS and all(a["status"] == "disabled" for a in accounts)


def test_an_agent_no_node_takes_says_why_until_a_node_does(swarm, docker_client, make_daemon):
    # its task waited unplaced while `fleet ls` showed it "starting" with nothing to say
    node2, encrypted = swarm
    (worker,) = docker_client.nodes.list(filters={"name": "node2"})
    label = f"fleet-test-{secrets.token_hex(4)}"

    def labelled(value: str | None) -> None:
        worker.reload()
        spec = worker.attrs["Spec"]
        labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k != label}
        worker.update({**spec, "Labels": labels | ({label: value} if value else {})})

    labelled("agents")
    try:
        daemon = make_daemon(
            "swarm",
            FLEET_SWARM_CONSTRAINTS=json.dumps([f"node.labels.{label}==agents"]),
            FLEET_SWARM_ENCRYPTED=str(encrypted).lower(),
            FLEET_AGENT_CYCLE_SECONDS="2",
        )
        assert daemon.fleet("spawn", "1").returncode == 0
        (agent,) = daemon.wait_for(
            lambda now: now[0]["phase"] == "running", "the agent heartbeating", timeout=120
        )
        assert agent["node"] == "node2" and agent["reason"] is None
        labelled(None)  # Swarm will find no node for its next task
        (container,) = node2.containers.list(
            filters={"label": f"fleet.agent_id={agent['id']}", "status": "running"}
        )
        container.kill()
        (waiting,) = daemon.wait_for(
            lambda now: (now[0]["reason"] or "").startswith("not placed: "), "why it waits"
        )
        assert waiting["reason"].startswith("not placed: no suitable node (scheduling constra")
        listing = " ".join(daemon.fleet("ls").stdout.split())
        assert f"{agent['name']}: not placed: no suitable node" in listing

        labelled("agents")
        daemon.wait_for(
            lambda now: now[0]["reason"] is None and (now[0]["heartbeat_age_seconds"] or 99) < 5,
            "the agent placed and heartbeating again",
            timeout=120,
        )
        kinds = [e["kind"] for e in daemon.api("GET", f"/v1/agents/{agent['id']}/events").json()]
        assert kinds.count("unplaced") == 1 and "placed" in kinds[kinds.index("unplaced") :]
    finally:
        labelled(None)


def refused_by_up_and_doctor(docker_client, instance: str, state_dir, **env: str) -> str:
    """`fleet up` on the Swarm with these settings: the one line it is refused with, which
    `fleet doctor` fails its agent limits with too; nothing was made."""
    env = fleet_env(
        FLEET_STATE_DIR=str(state_dir),
        FLEET_INSTANCE=instance,
        FLEET_PORT=str(free_port()),
        FLEET_RUNTIME="swarm",
        **env,
    )
    up, doctor = (
        subprocess.run([*FLEET, command], env=env, capture_output=True, text=True, timeout=60)
        for command in ("up", "doctor")
    )
    assert up.returncode == 1 and len(up.stderr.splitlines()) == 1, up.stderr
    said = up.stderr.removeprefix("error: ").strip()
    assert doctor.returncode == 1
    assert f"FAIL agent limits {said}" in " ".join(doctor.stdout.split())
    labelled = {"label": f"fleet.instance={instance}"}
    assert docker_client.services.list(filters=labelled) == []
    assert docker_client.networks.list(filters=labelled) == []
    return said


def test_more_cpus_than_any_node_has_are_refused_before_anything_is_made(
    swarm, docker_client, instance, tmp_path
):
    # `up` started, and every agent's task was rejected by its node in a crash loop:
    # "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    most = max(n.attrs["Description"]["Resources"]["NanoCPUs"] for n in docker_client.nodes.list())
    too_many = f"{most / 1e9 + 1:g}"
    said = refused_by_up_and_doctor(
        docker_client, instance, tmp_path / "state", FLEET_AGENT_CPUS=too_many
    )
    assert said == (
        f"FLEET_AGENT_CPUS={too_many}: the Swarm's largest ready node has {most / 1e9:g} "
        "CPUs, and an agent can be given at most that many"
    )


def test_placement_constraints_are_read_as_the_swarm_reads_them(swarm, docker_client):
    node2, _ = swarm
    nodes = docker_client.api.nodes()
    named = {n["Description"]["Hostname"]: n for n in nodes}
    worker, manager = node2.info()["Name"], docker_client.info()["Name"]
    assert set(named) == {worker, manager}

    def admitted(*expressions: str) -> set[str]:
        constraints = parse(expressions)
        return {name for name, n in named.items() if admits(n, constraints)}

    assert admitted(f"node.hostname=={worker.upper()}") == {worker}
    assert admitted("node.role==manager") == {manager}
    assert admitted("node.role!=manager", "node.platform.os==linux") == {worker}
    assert admitted("node.labels.fleet==agents") == set()
    assert admitted(f"node.id=={named[manager]['ID']}") == {manager}


@pytest.mark.parametrize(
    ("constraints", "refusal"),
    [
        (
            '["node.labels.fleet==agents"]',
            'FLEET_SWARM_CONSTRAINTS=["node.labels.fleet==agents"]: no node of the Swarm ({}) '
            "satisfies them, so no agent could be placed",
        ),
        (
            '["node.labels.fleet=agents"]',
            "FLEET_SWARM_CONSTRAINTS: 'node.labels.fleet=agents': it has neither == nor !=",
        ),
    ],
)
def test_placement_no_node_satisfies_or_swarm_would_refuse_stops_up(
    swarm, docker_client, instance, tmp_path, constraints, refusal
):
    # the agents' services were made and their tasks waited unplaced, each agent
    # "starting" with nothing to say; or a constraint Swarm cannot read went to each create
    node2, _ = swarm
    names = ", ".join(sorted([node2.info()["Name"], docker_client.info()["Name"]]))
    said = refused_by_up_and_doctor(
        docker_client, instance, tmp_path / "state", FLEET_SWARM_CONSTRAINTS=constraints
    )
    assert said.startswith(refusal.format(names))
