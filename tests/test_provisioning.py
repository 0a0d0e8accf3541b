"""Account provisioning end to end: daemon + process agents + a live sandbox platform."""

import subprocess
import sys
import time
from collections import Counter

import httpx

from orchestrator.tools.harness import free_port, serve
from platform_client import Forbidden, PlatformClient
from sandbox.app import create_sandbox_app
from tests.conftest import CONTROLLER_KEY, sandbox_config

# What a retirement records once, however often the platform holds it up
ONCE = ("retire_requested", "positions_left", "retire_waiting", "account_disabled", "retired")


def phases_are(n, phase):
    return lambda agents: len(agents) == n and all(a["phase"] == phase for a in agents)


def platform_env(url, key=CONTROLLER_KEY):
    return {"FLEET_PLATFORM_URL": url, "FLEET_CONTROLLER_API_KEY": key}


def kinds(daemon, agent_id):
    return [e["kind"] for e in daemon.api("GET", f"/v1/agents/{agent_id}/events").json()]


def test_spawned_agents_get_accounts_log_in_and_retire_disables_them(make_daemon, tmp_path):
    with serve(create_sandbox_app(sandbox_config(f"sqlite:///{tmp_path / 'p.db'}"))) as url:
        daemon = make_daemon(**platform_env(url))
        assert daemon.fleet("spawn", "2").returncode == 0
        agents = daemon.wait_for(phases_are(2, "running"), "two running agents")
        controller = PlatformClient(url, controller_key=CONTROLLER_KEY)
        accounts = {a["idempotency_key"]: a for a in controller.controller_agents()}
        assert set(accounts) == {a["id"] for a in agents}  # idempotency key = agent id
        assert all(a["status"] == "active" and a["last_login_at"] for a in accounts.values())
        # heartbeats carry the account state, and the operator sees it
        agents = daemon.wait_for(
            lambda now: all(a["equity"] is not None for a in now), "account state in heartbeats"
        )
        for agent in agents:
            assert agent["equity"] > 0 and agent["cash"] is not None
            assert agent["open_positions"] >= 0 and agent["orders_submitted"] >= 0
        assert "EQUITY" in daemon.fleet("ls").stdout
        assert kinds(daemon, agents[0]["id"])[:4] == [
            "created",
            "provisioning",
            "account_created",
            "container_started",
        ]

        # credentials are sealed at rest and shown nowhere
        replayed = controller.create_agent(
            agents[0]["id"], agents[0]["name"], {"strategy": agents[0]["strategy"]}
        )
        password = replayed.password
        database = (daemon.state_dir / "fleet.db").read_bytes()
        wal = daemon.state_dir / "fleet.db-wal"
        assert password.encode() not in database + (wal.read_bytes() if wal.exists() else b"")
        assert password not in daemon.fleet("ls", "--json").stdout
        assert password not in daemon.api("GET", f"/v1/agents/{agents[0]['id']}").text
        assert password not in daemon.log_path.read_text()

        result = daemon.fleet("retire", "--all")
        assert result.returncode == 0, result.stderr
        assert all(a["status"] == "disabled" for a in controller.controller_agents())
        try:
            PlatformClient(url).login(replayed.username, password)
            raise AssertionError("a retired agent's account still logs in")
        except Forbidden as exc:
            assert exc.status == 403
        assert "account_disabled" in kinds(daemon, agents[0]["id"])


def test_a_refused_controller_key_fails_the_agent_with_its_reason(make_daemon, tmp_path):
    with serve(create_sandbox_app(sandbox_config(f"sqlite:///{tmp_path / 'p.db'}"))) as url:
        daemon = make_daemon(**platform_env(url, key="not-the-controller-key"))
        daemon.fleet("spawn", "1")
        (agent,) = daemon.wait_for(phases_are(1, "failed"), "the agent to fail")
        assert agent["reason"] == (
            "the platform refused the account: missing or wrong X-Controller-Key "
            "(invalid_controller_key)"
        )
        assert agent["container_id"] is None
        listing = daemon.fleet("ls").stdout
        assert "failed" in listing and "X-Controller-Key" in listing
        assert "not-the-controller-key" not in daemon.log_path.read_text()


def test_provisioning_waits_out_a_platform_outage(make_daemon, tmp_path):
    port = free_port()
    daemon = make_daemon(
        **platform_env(f"http://127.0.0.1:{port}"), FLEET_PROVISION_DEADLINE_SECONDS="1"
    )
    daemon.fleet("spawn", "1")
    daemon.wait_for(
        lambda a: a and "provision_retry" in kinds(daemon, a[0]["id"]), "a provisioning retry"
    )
    (agent,) = daemon.agents()  # read after the retry was seen: the list above may predate it
    assert agent["phase"] == "provisioning"
    assert agent["reason"].startswith("platform unavailable")
    with serve(create_sandbox_app(sandbox_config(f"sqlite:///{tmp_path / 'p.db'}")), port):
        (agent,) = daemon.wait_for(phases_are(1, "running"), "the agent to run after the outage")
        assert agent["reason"] is None
        accounts = PlatformClient(
            f"http://127.0.0.1:{port}", controller_key=CONTROLLER_KEY
        ).controller_agents()
        assert [a["idempotency_key"] for a in accounts] == [agent["id"]]


def test_platform_url_without_a_controller_key_is_a_settings_error(make_daemon):
    daemon = make_daemon()
    env = {**daemon.env, "FLEET_PLATFORM_URL": "http://127.0.0.1:1"}
    env.pop("FLEET_CONTROLLER_API_KEY", None)
    # an empty key (`FLEET_CONTROLLER_API_KEY=`, as a template leaves it) is no key: it
    # started a daemon whose every account creation the platform then refused
    for key in ({}, {"FLEET_CONTROLLER_API_KEY": ""}):
        result = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "up"],
            env={**env, **key},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, key
        assert result.stderr.strip() == (
            "error: invalid settings: FLEET_PLATFORM_URL is set but FLEET_CONTROLLER_API_KEY is not"
        )
    sandbox = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "sandbox", "--port", "1"],
        env={**daemon.env, "FLEET_CONTROLLER_API_KEY": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (sandbox.returncode, sandbox.stderr) == (
        2,
        "error: FLEET_CONTROLLER_API_KEY is not set: the sandbox needs a controller key\n",
    )
    assert httpx.get(f"{daemon.url}/healthz").status_code == 200  # the running one is untouched


def test_a_retirement_the_platform_holds_up_says_why_and_records_each_step_once(
    make_daemon, market_sandbox, market
):
    daemon = make_daemon(
        **market,
        FLEET_AGENT_CYCLE_SECONDS="1",
        FLEET_PROVISION_DEADLINE_SECONDS="1",  # each try gives up within a second
    )
    daemon.fleet("spawn", "3", "--population", "news-hounds", "--wait")
    agents = daemon.wait_for(
        lambda a: any(x["open_positions"] for x in a), "an agent holding a position", 120
    )
    holder = next(a for a in agents if a["open_positions"])
    market_sandbox.stop()
    assert daemon.fleet("retire", holder["name"], "--no-wait").returncode == 0
    daemon.wait_for(
        lambda _: "retire_waiting" in kinds(daemon, holder["id"]), "the retirement to wait"
    )
    time.sleep(5)  # it tries again every round meanwhile
    (waiting,) = [a for a in daemon.agents() if a["id"] == holder["id"]]
    assert waiting["phase"] == "retiring"
    assert waiting["reason"].startswith("waiting for the platform: cannot connect")
    assert f"{holder['name']}: waiting for the platform" in daemon.fleet("ls").stdout
    late = daemon.fleet("retire", holder["name"], "--flatten", "--no-wait")  # too late to sell
    assert late.stdout.strip() == (
        f"{holder['name']} ({holder['id'][:8]}) is already retiring, as first asked: "
        "--flatten applies only to a new retirement"
    )

    market_sandbox.start()
    daemon.wait_for(
        lambda a: any(x["id"] == holder["id"] and x["phase"] == "retired" for x in a),
        "the retirement to end once the platform answers",
    )
    timeline = Counter(kinds(daemon, holder["id"]))
    # Its workload stopped at the first try, so the positions it last reported stay; should
    # it have sold them just before the platform stopped, there are none to leave open.
    once = [k for k in ONCE if k != "positions_left" or waiting["open_positions"]]
    assert [timeline[k] for k in once] == [1] * len(once), timeline
    (retired,) = [a for a in daemon.agents() if a["id"] == holder["id"]]
    assert retired["reason"] is None
