"""The daemon over real HTTP on 127.0.0.1, with agents as local processes."""

import os
import signal
import socket
import subprocess
import sys
import time

from orchestrator.tools.harness import FLEET, Daemon


def all_running(n):
    return lambda agents: len(agents) == n and all(a["phase"] == "running" for a in agents)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc tells.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def run_agent(daemon, agent_id, token, **popen):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update(FLEET_AGENT_ID=agent_id, FLEET_GATEWAY_URL=daemon.url, FLEET_AGENT_TOKEN=token)
    return subprocess.Popen(
        [sys.executable, "-m", "agent_runtime"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **popen,
    )


def test_spawn_runs_agents_that_heartbeat_and_retire(make_daemon):
    daemon = make_daemon()
    result = daemon.fleet("spawn", "2")
    assert result.returncode == 0, result.stderr
    assert "spawned 2 agent(s)" in result.stdout
    agents = daemon.wait_for(all_running(2), "two running agents")
    assert all(a["container_id"].startswith("pid-") for a in agents)
    assert all(a["heartbeat_age_seconds"] is not None for a in agents)

    gone = agents[0]
    result = daemon.fleet("retire", gone["name"])
    assert result.returncode == 0, result.stderr
    assert f"retired {gone['name']}" in result.stdout
    assert not pid_alive(int(gone["container_id"].removeprefix("pid-")))
    phases = {a["name"]: a["phase"] for a in daemon.agents()}
    assert phases == {gone["name"]: "retired", agents[1]["name"]: "running"}
    kinds = [e["kind"] for e in daemon.api("GET", f"/v1/agents/{gone['id']}/events").json()]
    assert kinds == ["created", "container_started", "running", "retire_requested", "retired"]
    again = daemon.fleet("retire", gone["name"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"{gone['name']} ({gone['id'][:8]}) is already retired\n")


def test_killed_daemon_takes_its_agent_processes_with_it(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "2")
    agents = daemon.wait_for(all_running(2), "two running agents")
    pids = [int(a["container_id"].removeprefix("pid-")) for a in agents]
    daemon.kill()
    # SIGTERM reaches them at once; a loaded CI machine may take a while to run them down
    deadline = time.monotonic() + 30
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(p) for p in pids)

    daemon.start()  # the process runtime starts them again, same agents
    again = daemon.wait_for(all_running(2), "the same two agents running again")
    assert {a["id"] for a in again} == {a["id"] for a in agents}


def test_spawn_rejects_a_bad_count_and_changes_nothing(make_daemon):
    daemon = make_daemon()
    for arg in ("0", "-1", "abc", "1001"):
        result = daemon.fleet("spawn", arg)
        assert result.returncode == 2, arg
        error = result.stderr.strip().splitlines()[-1]
        assert error.startswith("Error: Invalid value for 'COUNT': ") and arg in error
        assert "Traceback" not in result.stderr
    assert daemon.agents() == []


def test_retire_of_an_unknown_agent_is_one_line_and_changes_nothing(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "1")
    before = daemon.agents()
    result = daemon.fleet("retire", "no-such-agent", "--no-wait")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no agent 'no-such-agent'"
    assert [a["phase"] for a in daemon.agents()] != ["retiring"]
    assert [a["id"] for a in daemon.agents()] == [a["id"] for a in before]
    assert daemon.api("DELETE", "/v1/agents/no-such-agent").status_code == 404


def test_retire_needs_agents_or_all_but_not_both(make_daemon):
    daemon = make_daemon()
    assert daemon.fleet("retire").returncode == 2
    assert daemon.fleet("retire", "x", "--all").returncode == 2


def test_wrong_operator_token_is_refused(make_daemon):
    daemon = make_daemon()
    response = daemon.api("GET", "/v1/agents", token="not-the-token")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "unauthorized", "message": "wrong or missing operator token"}
    }
    assert daemon.api("POST", "/v1/agents", token="", json={"count": 1}).status_code == 401
    env_result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "spawn", "1"],
        env={**daemon.env, "FLEET_OPERATOR_TOKEN": "wrong"},
        capture_output=True,
        text=True,
    )
    assert env_result.returncode == 1
    assert env_result.stderr.strip() == "error: wrong or missing operator token"
    assert daemon.agents() == []


def test_malformed_spawn_requests_are_refused_with_the_field(make_daemon):
    daemon = make_daemon()
    bad = [{"count": 0}, {"count": "x"}, {"count": 1, "strategy": "yolo"}, {}]
    for body in bad:
        response = daemon.api("POST", "/v1/agents", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_request"
    response = daemon.api(
        "POST", "/v1/agents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code in (401, 422)
    assert daemon.agents() == []


def test_spawn_with_the_same_idempotency_key_replays(make_daemon):
    daemon = make_daemon()
    body = {"count": 2, "strategy": "contrarian", "idempotency_key": "retry-key-123"}
    first = daemon.api("POST", "/v1/agents", json=body)
    second = daemon.api("POST", "/v1/agents", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert [a["id"] for a in first.json()["agents"]] == [a["id"] for a in second.json()["agents"]]
    conflict = daemon.api("POST", "/v1/agents", json={**body, "count": 3})
    assert conflict.status_code == 409
    assert len(daemon.agents()) == 2


def test_agent_with_a_wrong_token_exits_with_a_clear_message(make_daemon):
    daemon = make_daemon()
    agent = run_agent(daemon, "00000000-0000-0000-0000-000000000000", "wrong-token")
    out, _ = agent.communicate(timeout=30)
    assert agent.returncode == 3
    assert "the gateway refused this agent's token (401)" in out
    assert "wrong-token" not in out
    response = daemon.api("POST", "/v1/agent/heartbeat", token="wrong-token", json={"cycle": 1})
    assert response.status_code == 401


def test_agent_token_reads_only_its_own_bootstrap_and_dies_with_retirement(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "2")
    a, b = daemon.wait_for(all_running(2), "two running agents")
    token_a = daemon.agent_token(a["id"])
    boot = daemon.api("GET", "/v1/agent/bootstrap", token=token_a).json()
    assert boot["agent_id"] == a["id"] and boot["name"] == a["name"]
    assert token_a not in str(boot)
    # B's token reads B, whatever it asks: there is no way to name another agent.
    other = daemon.api(
        "GET", f"/v1/agent/bootstrap?agent_id={a['id']}", token=daemon.agent_token(b["id"])
    ).json()
    assert other["agent_id"] == b["id"]
    daemon.fleet("retire", a["id"])
    assert daemon.api("GET", "/v1/agent/bootstrap", token=token_a).status_code == 401


def test_agent_waiting_for_an_unreachable_gateway_stops_cleanly_on_sigterm(make_daemon):
    daemon = make_daemon()
    daemon.stop()  # the agent now retries its bootstrap against a closed port
    agent = run_agent(daemon, "00000000-0000-0000-0000-000000000000", "some-token")
    first = agent.stdout.readline()
    assert "bootstrap failed, retrying: gateway unreachable" in first
    assert agent.poll() is None  # an unreachable gateway is not fatal
    agent.send_signal(signal.SIGTERM)
    out, _ = agent.communicate(timeout=10)
    assert agent.returncode == 0, first + out


def test_cli_says_in_one_line_when_the_daemon_is_down(make_daemon):
    daemon = make_daemon()
    daemon.stop()
    result = daemon.fleet("ls")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: the fleet daemon is not running at {daemon.url} (start it with `fleet up`)"
    )


def test_up_and_sandbox_on_a_taken_port_say_so_in_one_line_and_start_nothing(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    daemon = Daemon(tmp_path / "state", port, "taken", "process")
    sandbox_env = {**daemon.env, "FLEET_SANDBOX_PORT": str(port), "FLEET_CONTROLLER_API_KEY": "k"}
    try:
        up, sandbox = (
            subprocess.run([*FLEET, command], env=env, capture_output=True, text=True, timeout=60)
            for command, env in (("up", daemon.env), ("sandbox", sandbox_env))
        )
    finally:
        taken.close()
    for result, change in ((up, "set FLEET_PORT"), (sandbox, "pass a free one with --port")):
        assert result.returncode == 1
        # nothing else: no "up", no "sandbox platform on …" before the server's own error
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: address already in use")
        assert change in line, line


def test_spawn_samples_personalities_that_bootstrap_hands_over(make_daemon, tmp_path):
    daemon = make_daemon()
    result = daemon.fleet("spawn", "3", "--seed", "5", "--population", "contrarians")
    assert result.returncode == 0, result.stderr
    agents = daemon.wait_for(all_running(3), "three running agents")
    assert {a["strategy"] for a in agents} == {"contrarian"}
    boot = daemon.api(
        "GET", "/v1/agent/bootstrap", token=daemon.agent_token(agents[0]["id"])
    ).json()
    personality = boot["personality"]
    assert agents[0]["name"].startswith(personality["name"] + "-")
    assert personality["contrarian_tendency"] >= 0.6 and personality["position_fraction"] <= 0.15
    assert boot["risk_limits"]["max_positions"] == 10
    assert boot["clock"]["hours"] == "always" and boot["paused"] is False
    daemon.fleet("pause")  # an agent that starts while paused must not trade first
    boot = daemon.api(
        "GET", "/v1/agent/bootstrap", token=daemon.agent_token(agents[0]["id"])
    ).json()
    assert boot["paused"] is True
    daemon.fleet("resume")

    bad = tmp_path / "bad.yaml"
    bad.write_text("strategies: {contrarian: 0.7}\n")
    result = daemon.fleet("spawn", "2", "--population", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}: strategies: weights sum to 0.7, not 1"
    unknown = daemon.api("POST", "/v1/agents", json={"count": 1, "population": "yolo"})
    assert unknown.status_code == 422 and "unknown archetype" in unknown.text
    inline = daemon.api("POST", "/v1/agents", json={"count": 1, "population": {"x": 1}})
    assert inline.status_code == 422 and inline.json()["error"]["code"] == "invalid_population"
    assert len(daemon.agents()) == 3


def test_sigterm_stops_the_daemon_even_with_an_action_stuck_on_the_platform(make_daemon):
    """Provisioning hangs on a platform that never answers; SIGTERM still ends the daemon
    within its stop grace (20 s), instead of waiting for the stuck call."""
    from orchestrator.tools.harness import serve
    from orchestrator.tools.scripted import ScriptedApp

    stuck = ScriptedApp(delay=300).on("/api/controller/create-agent", (201, {}, {}))
    with serve(stuck) as url:
        daemon = make_daemon(
            FLEET_PLATFORM_URL=url,
            FLEET_CONTROLLER_API_KEY="k" * 16,
            FLEET_PROVISION_DEADLINE_SECONDS="300",
        )
        daemon.fleet("spawn", "1")
        daemon.wait_for(lambda a: a[0]["phase"] == "provisioning", "provisioning to hang")
        daemon.process.send_signal(signal.SIGTERM)
        # Not the 300 s the call would take: after its graceful stop uvicorn re-raises
        # the signal, and the process ends on it.
        assert daemon.process.wait(timeout=45) in (0, -signal.SIGTERM)
        assert "Traceback" not in daemon.log_path.read_text()
