"""`fleet demo`: one command starts the sandbox, the daemon and agents that trade; at the
end nothing is left running."""

import socket
import sqlite3
import subprocess
from pathlib import Path

from orchestrator.tools.harness import FLEET, free_port


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


def test_demo_trades_for_a_minute_then_leaves_nothing_running(tmp_path):
    state = tmp_path / "demo"
    port, sandbox_port = free_port(), free_port()
    result = subprocess.run(
        [
            *FLEET,
            "demo",
            "--agents",
            "5",
            "--for",
            "60",
            "--state-dir",
            str(state),
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "spawned 5 agent(s)" in result.stdout
    assert f"dashboard:  http://127.0.0.1:{port}/" in result.stdout
    # how a second shell reaches it
    assert f"CLI:        FLEET_STATE_DIR={state} FLEET_PORT={port} fleet ls" in result.stdout
    assert "nothing left running" in result.stdout and "Traceback" not in result.stderr

    with sqlite3.connect(state / "sandbox.db") as db:
        query = "SELECT count(*) FROM sandbox_orders WHERE status = 'filled'"
        (filled,) = db.execute(query).fetchone()
    assert filled >= 1
    assert f"stopping: {filled} order(s) filled on the sandbox" in result.stdout
    assert ours(state) == []


def test_demo_refuses_a_taken_port_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                *FLEET,
                "demo",
                "--port",
                str(port),
                "--sandbox-port",
                str(free_port()),
                "--state-dir",
                str(tmp_path / "demo"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert (
        result.stderr == f"error: port {port} for the daemon is taken; pass another with --port\n"
    )
