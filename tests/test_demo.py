"""`fleet demo`: one command starts the sandbox, the daemon and agents that trade; at the
end nothing is left running."""

import re
import socket
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feeds.clock import MarketClock
from orchestrator.tools.demo import MARKET_FILE, _anchor
from orchestrator.tools.harness import FLEET, free_port

ROOT = Path(__file__).resolve().parents[1]


def ours(state_dir) -> list[int]:
    """Processes started for this demo: they carry its state dir in their environment."""
    marker = f"FLEET_STATE_DIR={state_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


@pytest.mark.docker
def test_timeout_60_make_demo_trades_then_leaves_no_process_and_no_container(tmp_path):
    import docker

    state = tmp_path / "demo"
    port, sandbox_port = free_port(), free_port()
    flags = f"--runtime docker --port {port} --sandbox-port {sandbox_port} --state-dir {state}"
    # The demo's own default of 5 agents: each trades only on its symbols' news. 19 and 20
    # fills in two idle runs; 2 to 6, and once none under CI's load, while the gateway's
    # cache served a minute of wall time (three market days) of the same news
    result = subprocess.run(  # SIGTERM after 60 s, to make, uv and the demo alike
        ["timeout", "60", "make", "demo", "AGENTS=5", f"DEMO_FLAGS={flags}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 124, result.stderr + result.stdout  # stopped, not crashed
    assert "spawned 5 agent(s)" in result.stdout
    assert f"dashboard:  http://127.0.0.1:{port}/" in result.stdout
    # how a second shell reaches it
    assert f"CLI:        FLEET_STATE_DIR={state} FLEET_PORT={port} fleet ls" in result.stdout
    assert "nothing left running" in result.stdout and "Traceback" not in result.stderr

    with sqlite3.connect(state / "sandbox.db") as db:
        query = "SELECT count(*) FROM sandbox_orders WHERE status = 'filled'"
        (filled,) = db.execute(query).fetchone()
    assert filled >= 1  # confined agents traded through the gateway's relay
    assert f"\n{filled} order(s) filled on the sandbox\n" in result.stdout
    assert ours(state) == []
    client = docker.from_env(version="auto")
    try:
        (name,) = set(re.findall(r"fleet (\S+) up on docker", (state / "up.log").read_text()))
        assert client.containers.list(all=True, filters={"label": f"fleet.instance={name}"}) == []
    finally:
        client.close()


def test_an_interrupt_relayed_by_make_and_uv_run_cuts_no_clean_up_short(tmp_path):
    state = tmp_path / "demo"
    flags = f"--port {free_port()} --sandbox-port {free_port()} --state-dir {state}"
    result = subprocess.run(  # SIGINT to make alone: uv run passes it on, and it arrives twice
        ["timeout", "-s", "INT", "25", "make", "demo", "AGENTS=2", f"DEMO_FLAGS={flags}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "demo stopped; nothing left running" in result.stdout, result.stdout + result.stderr
    assert "Aborted" not in result.stderr and "Traceback" not in result.stderr
    assert ours(state) == []


@pytest.mark.parametrize("which", ["--port", "--sandbox-port"])
def test_demo_refuses_a_taken_port_and_starts_nothing(tmp_path, which):
    what = {"--port": "daemon", "--sandbox-port": "sandbox"}[which]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--port": str(free_port()), "--sandbox-port": str(free_port()), which: str(port)}
        options = [part for pair in ports.items() for part in pair]
        result = subprocess.run(
            [*FLEET, "demo", *options, "--state-dir", str(tmp_path / "demo")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: port {port} for the {what} is taken; pass another with {which}\n"
    )


def test_demo_refuses_a_state_dir_it_cannot_make(tmp_path):
    (tmp_path / "a-file").write_text("")
    kept = tmp_path / "a-file" / "demo"
    ports = ["--port", str(free_port()), "--sandbox-port", str(free_port())]
    result = subprocess.run(
        [*FLEET, "demo", *ports, "--state-dir", str(kept)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (
        1,
        f"error: cannot keep the demo's state in {kept}: Not a directory\n",
    )


def test_a_kept_state_dir_brings_back_as_many_agents_as_asked_not_more(tmp_path):
    state = tmp_path / "demo"  # each demo added its agents beside the kept ones: 6, 12, 18…
    said, market_from, stopped_at = [], [], []
    for agents in (2, 2, 3):
        options = ["--agents", str(agents), "--for", "1", "--state-dir", str(state)]
        options += ["--port", str(free_port()), "--sandbox-port", str(free_port())]
        result = subprocess.run(
            [*FLEET, "demo", *options],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        said.append(result.stdout.splitlines()[0])
        (start,) = re.findall(r"market 4320x from (\S+ \S+) UTC", result.stdout)
        market_from.append(datetime.fromisoformat(f"{start}Z"))
        stopped_at.append(datetime.fromisoformat((state / MARKET_FILE).read_text().strip()))
    assert said[0].startswith("scaling to 2: spawned 2 agent(s): ")
    assert said[1] == "the fleet already has 2 agent(s)"
    assert said[2].startswith("scaling to 3: spawned 1 agent(s): ")
    # each market goes on from where the last stopped (printed to the minute), a market
    # hour or more on
    for stopped, start in zip(stopped_at, market_from[1:], strict=False):
        assert abs(stopped - start) < timedelta(minutes=1, seconds=1)
    assert market_from[0] + timedelta(hours=1) < market_from[1] < market_from[2]
    # the demo removed its agents' workloads and the next started them: nothing vanished
    with sqlite3.connect(state / "fleet.db") as db:
        kinds = [kind for (kind,) in db.execute("SELECT kind FROM agent_events ORDER BY id")]
        restarts = {n for (n,) in db.execute("SELECT restarts FROM agents")}
    assert "vanished" not in kinds and restarts == {0}
    assert kinds.count("stopped") == kinds.count("container_started") > 0


@pytest.mark.parametrize(
    ("kept", "at"),
    [
        ("2026-12-09T10:00:00+00:00", datetime(2026, 12, 9, 10, tzinfo=UTC)),  # ahead: on
        ("2026-12-01T10:00:00+00:00", None),  # behind the wall: from now
        ("2026-12-09T10:00:00", None),  # no zone
        ("three days on", None),
        ("2040-12-09T10:00:00+00:00", None),  # farther ahead than the settings allow
    ],
)
def test_a_kept_market_goes_on_where_it_stopped_if_it_can(tmp_path, kept, at):
    wall = datetime(2026, 12, 6, 3, 30, tzinfo=UTC)
    (tmp_path / MARKET_FILE).write_text(f"{kept}\n")
    market = MarketClock(4320, _anchor(tmp_path / MARKET_FILE, 4320, wall))
    assert abs(market.at(wall) - (at or wall)) < timedelta(milliseconds=1)
    assert _anchor(tmp_path / "none", 4320, wall) == wall


@pytest.mark.parametrize("leave", ["ctrl-c", "close the terminal"])
def test_the_demo_dashboard_keeps_the_url_token_and_cli_line_in_view(tmux, tmp_path, leave):
    import shlex

    from orchestrator.tools.harness import fleet_env, wait_until

    session, run = tmux
    state = tmp_path / "demo"
    port, sandbox_port = free_port(), free_port()
    demo = [*FLEET, "demo", "--agents", "2", "--state-dir", str(state)]
    demo += ["--port", str(port), "--sandbox-port", str(sandbox_port)]
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in fleet_env().items() if k == "PATH")
    run(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "180",
        "-y",
        "50",
        f"env {env} {shlex.join(demo)}; echo EXITED $?; sleep 600",
    )

    def screen(*texts: str) -> str:
        shown = run("capture-pane", "-p", "-t", session)
        return shown if all(text in shown for text in texts) else ""

    token_file = state / "operator-token"
    wait_until(token_file.exists, "the demo's daemon")
    token = token_file.read_text().strip()
    shown = wait_until(lambda: screen("running 2", "latest events"), "the live dashboard")
    flat = "".join(shown.split())  # a narrow terminal wraps the lines
    assert f"dashboard:http://127.0.0.1:{port}/(operatortoken{token})" in flat
    assert f"FLEET_STATE_DIR={state}FLEET_PORT={port}fleetls" in flat

    if leave == "ctrl-c":
        run("send-keys", "-t", session, "C-c")
        after = wait_until(lambda: screen("EXITED"), "the demo to stop", timeout=90)
        assert "EXITED 0" in after and "nothing left running" in after
    else:  # SIGHUP, with no one left to read what it prints
        run("kill-session", "-t", session)
    wait_until(lambda: not ours(state), "every process of the demo to stop", timeout=90)
