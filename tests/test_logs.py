"""Logs of a full run: JSON lines that name their agent, and no secret anywhere in them."""

import json

from orchestrator import keys
from orchestrator.tools.harness import serve
from platform_client import PlatformClient
from sandbox.app import create_sandbox_app
from tests.conftest import CONTROLLER_KEY, sandbox_config

ANTHROPIC_KEY = "sk-ant-test-0f9e8d7c6b5a"
WEBHOOK = "http://127.0.0.1:9/hooks/T000/B000/secret-path-4d3c"


def test_json_logs_name_their_agent_and_hold_no_secret(make_daemon, tmp_path):
    with serve(create_sandbox_app(sandbox_config(f"sqlite:///{tmp_path / 'p.db'}"))) as url:
        daemon = make_daemon(
            FLEET_LOG_FORMAT="json",
            FLEET_PLATFORM_URL=url,
            FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
            FLEET_ANTHROPIC_API_KEY=ANTHROPIC_KEY,
            FLEET_ALERT_WEBHOOK_URL=WEBHOOK,
        )
        daemon.fleet("spawn", "3", "--wait")
        agents = daemon.agents()
        daemon.fleet("pause")  # an alert, delivered to an unreachable webhook
        daemon.fleet("retire", agents[0]["name"], "--flatten")
        daemon.fleet("logs", agents[1]["name"])
        controller = PlatformClient(url, controller_key=CONTROLLER_KEY)
        passwords = [
            controller.create_agent(a["id"], a["name"], {"strategy": a["strategy"]}).password
            for a in agents
        ]
        controller.close()
    instance_key = keys.instance_key(daemon.state_dir)
    secrets = {
        "controller key": CONTROLLER_KEY,
        "anthropic key": ANTHROPIC_KEY,
        "webhook": "secret-path-4d3c",
        "operator token": daemon.token,
        **{f"password {i}": p for i, p in enumerate(passwords)},
        **{f"token {a['name']}": keys.agent_token(instance_key, a["id"], 0) for a in agents},
    }

    lines = daemon.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(entries) >= 5
    about_agents = [e for e in entries if any(a["id"] in e["message"] for a in agents)]
    assert about_agents, "no line about an agent"
    for entry in about_agents:
        assert entry.get("agent_id") in {a["id"] for a in agents}, entry
    named = {e.get("agent") for e in about_agents} - {None}
    assert named >= {agents[0]["name"]}

    outputs = {"daemon log": daemon.log_path.read_text()}
    for path in (daemon.state_dir / "logs").glob("*.log"):
        outputs[f"agent log {path.name}"] = path.read_text()
    assert len(outputs) >= 4
    for where, text in outputs.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} is in the {where}"
