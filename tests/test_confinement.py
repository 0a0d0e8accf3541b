"""An agent container reaches the gateway and, through it, its own platform account, and
nothing else: not a listener on the host's loopback, not the daemon's port (`/metrics`),
not the platform directly, and only the agents' routes on the gateway socket."""

import json

import httpx
import pytest

from orchestrator.settings import Settings
from orchestrator.tools.harness import gateway_dir, serve
from orchestrator.tools.scripted import ScriptedApp
from platform_client import PlatformClient
from tests.conftest import CONTROLLER_KEY

# Run inside a container: try each TCP port on 127.0.0.1, then the gateway socket.
PROBE = """
import json, os, socket, sys
devices = open("/proc/net/dev").readlines()[2:]
seen = {"interfaces": [line.split(":")[0].strip() for line in devices]}
for port in sys.argv[1:]:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=3).close()
        seen[port] = "reached"
    except OSError as exc:
        seen[port] = f"refused: {exc.strerror}"
def ask(path, token=None):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect("/run/fleet/gateway.sock")
    auth = f"Authorization: Bearer {token}\\r\\n" if token else ""
    s.sendall(f"GET {path} HTTP/1.0\\r\\nHost: gateway\\r\\n{auth}\\r\\n".encode())
    return s.recv(64).decode().split("\\r\\n")[0]
if os.path.exists("/run/fleet/gateway.sock"):
    token = os.environ["FLEET_AGENT_TOKEN"]
    for path in ("/metrics", "/healthz", "/v1/agents", "/v1/fleet"):
        seen[path] = ask(path, token)
    seen["bootstrap"] = ask("/v1/agent/bootstrap", token)
print(json.dumps(seen))
"""


def probe(container, *ports: int) -> dict:
    result = container.exec_run(["/opt/agent/bin/python", "-c", PROBE, *map(str, ports)])
    assert result.exit_code == 0, result.output.decode()
    return json.loads(result.output.decode().strip().splitlines()[-1])


@pytest.mark.docker
def test_a_confined_agent_trades_through_the_gateway_and_reaches_nothing_else(
    docker_client, make_daemon, instance, fleet_sandbox
):
    secret = ScriptedApp().on("/", (200, {"rows": "a database, say"}, {}))
    with serve(secret) as secret_url:
        daemon = make_daemon(
            "docker", FLEET_PLATFORM_URL=fleet_sandbox, FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY
        )
        assert daemon.fleet("spawn", "1", "--wait").returncode == 0
        (agent,) = daemon.agents()
        container = docker_client.containers.get(agent["container_id"])
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert container.attrs["Config"]["NetworkDisabled"] is True  # no network hook
        (mount,) = container.attrs["Mounts"]
        assert (mount["Destination"], mount["RW"]) == ("/run/fleet", False)
        assert mount["Source"] == str(gateway_dir(daemon.instance))

        other = int(secret_url.rsplit(":", 1)[1])
        platform = int(fleet_sandbox.rsplit(":", 1)[1])
        seen = probe(container, other, daemon.port, platform)
        assert seen["interfaces"] == ["lo"]  # no network at all
        for port in (other, daemon.port, platform):
            assert seen[str(port)].startswith("refused"), seen
        for path in ("/metrics", "/healthz"):
            assert seen[path] == "HTTP/1.1 404 Not Found", seen
        for path in ("/v1/agents", "/v1/fleet"):  # an agent token is no operator's
            assert seen[path] in ("HTTP/1.1 401 Unauthorized", "HTTP/1.1 404 Not Found"), seen
        assert seen["bootstrap"] == "HTTP/1.1 200 OK"

        # The same probe from a container on the host's network does reach the listener:
        # the refusals above are the confinement's doing, not the probe's.
        image = Settings().agent_image
        loose = docker_client.containers.run(
            image,
            detach=True,
            network_mode="host",
            entrypoint=["sleep", "60"],
            labels={"fleet.instance": instance},
        )
        try:
            assert probe(loose, other)[str(other)] == "reached"
        finally:
            loose.remove(force=True)

        # ...and the confined agent still heartbeats and uses its own account.
        beat = agent["last_heartbeat_at"]
        daemon.wait_for(
            lambda now: now[0]["last_heartbeat_at"] > beat and now[0]["equity"] is not None,
            "more heartbeats, with the account's equity",
        )
        (account,) = PlatformClient(
            fleet_sandbox, controller_key=CONTROLLER_KEY
        ).controller_agents()
        assert account["last_login_at"]  # logged in through the relay
        assert secret.seen == []  # the listener never heard from an agent


def test_the_relay_passes_an_agents_own_calls_and_nothing_else(make_daemon, fleet_sandbox):
    daemon = make_daemon(
        "process",
        FLEET_PLATFORM_URL=fleet_sandbox,
        FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
        FLEET_AGENT_CYCLE_SECONDS="300",  # the agent's own calls stay out of the way
    )
    daemon.fleet("spawn", "1", "--wait")
    (agent,) = daemon.agents()
    token = daemon.agent_token(agent["id"])
    boot = daemon.api("GET", "/v1/agent/bootstrap", token=token).json()["platform"]
    assert set(boot) == {"username", "password"}  # no platform address: the gateway is it

    login = daemon.api("POST", "/v1/platform/api/auth/login", token=token, json=boot)
    assert login.status_code == 200, login.text
    platform_token = {"X-Platform-Authorization": f"Bearer {login.json()['access_token']}"}
    portfolio = daemon.api(
        "GET", "/v1/platform/api/trading/portfolio", token=token, headers=platform_token
    )
    assert portfolio.status_code == 200 and portfolio.json()["equity"] > 0
    unauthorised = daemon.api("GET", "/v1/platform/api/trading/portfolio", token=token)
    assert unauthorised.status_code == 401  # the platform's own answer, passed back

    key = {"X-Controller-Key": CONTROLLER_KEY, **platform_token}
    for method, path in (
        ("GET", "/v1/platform/api/controller/agents"),
        ("POST", "/v1/platform/api/controller/create-agent"),
        ("GET", "/v1/platform/api/trading/../controller/agents"),
        ("PUT", "/v1/platform/api/trading/submit"),
    ):
        refused = daemon.api(method, path, token=token, headers=key, json={})
        assert refused.status_code in (403, 404, 405), (path, refused.text)
    controller = PlatformClient(fleet_sandbox, controller_key=CONTROLLER_KEY)
    assert len(controller.controller_agents()) == 1  # nothing was created

    # On the gateway socket, even the operator's token opens no operator route.
    door = httpx.HTTPTransport(uds=str(gateway_dir(daemon.instance) / "gateway.sock"))
    with httpx.Client(transport=door, base_url="http://gateway") as socket_client:
        operator = {"Authorization": f"Bearer {daemon.token}"}
        assert socket_client.get("/v1/agents", headers=operator).status_code == 404
        assert socket_client.get("/metrics").status_code == 404
        mine = socket_client.get(
            "/v1/agent/bootstrap", headers={"Authorization": f"Bearer {token}"}
        )
        assert mine.status_code == 200
    assert daemon.api("GET", "/v1/agents").status_code == 200  # on the port, it does

    forged = daemon.api("GET", "/v1/platform/api/trading/portfolio", token="forged")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "unauthorized"
