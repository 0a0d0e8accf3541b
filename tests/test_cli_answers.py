"""What the CLI shows of answers it did not expect, from a stand-in daemon on 127.0.0.1: an
agent's output as the daemon relays it, and another server on the daemon's port."""

from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp
from tests.conftest import cli


def test_logs_show_an_agents_control_characters_as_escapes(tmp_path):
    # an agent's output is its own: here a clipboard write, a screen wipe and a line rewind
    output = "bought AAPL\tqty 3\n\x1b]52;c;ZXZpbA==\x07\x1b[2J\rcafé ✓\n"
    daemon = ScriptedApp().on("/v1/agents/hostile/logs", (200, output, {}))
    with serve(daemon) as url:
        result = cli(
            "logs",
            "hostile",
            cwd=tmp_path,
            FLEET_PORT=url.rsplit(":", 1)[1],
            FLEET_OPERATOR_TOKEN="operator-token-0123456789abcdef",
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "bought AAPL\tqty 3\n\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\rcafé ✓\n"


def test_another_server_on_the_daemons_port_is_named_not_a_traceback(tmp_path):
    # another web app on FLEET_PORT: its 200 page was a JSONDecodeError at every command
    page = "<html>welcome</html>"
    other = ScriptedApp().on("/v1/agents", (200, page, {"content-type": "text/html"}))
    other.on("/v1/agents/x", (404, page, {"content-type": "text/html"}))
    other.on("/v1/reports", (500, "Internal Server Error", {}))
    other.on("/healthz", (200, page, {"content-type": "text/html"}))
    with serve(other) as url:
        said = {
            command: cli(
                *command.split(),
                cwd=tmp_path,
                FLEET_STATE_DIR=str(tmp_path / "state"),  # the doctor reads the store's
                FLEET_PORT=url.rsplit(":", 1)[1],
                FLEET_OPERATOR_TOKEN="operator-token-0123456789abcdef",
            )
            for command in ("ls", "show x", "report --now", "doctor")
        }
    stranger = "not as the fleet daemon does: is FLEET_PORT (or FLEET_HOST) the daemon's?\n"
    assert said["ls"].stderr == f"error: {url} answered HTTP 200 (text/html), {stranger}"
    assert said["show x"].stderr == f"error: {url} answered HTTP 404 (text/html), {stranger}"
    assert said["report --now"].returncode == 1
    assert said["report --now"].stderr.endswith(
        "answered HTTP 500 (text/plain; charset=utf-8): the daemon's log says why\n"
    )
    assert all(result.returncode == 1 for result in said.values())
    doctor = " ".join(said["doctor"].stdout.split())  # as rich wraps it
    assert (
        f"FAIL daemon {url} answered HTTP 200 (text/html), not as the fleet daemon does" in doctor
    )
    assert "something else has the daemon's port" in doctor
