"""One daemon per fleet: a second `fleet up` on the same state dir or the same database
refuses to start, names the holder and touches nothing; when the holder dies, the next
daemon takes over at once."""

import os
import subprocess

import pytest

from orchestrator.state.db import connect
from orchestrator.state.errors import LeaseHeld
from orchestrator.state.lease import FleetLease
from orchestrator.tools.harness import FLEET, Daemon, free_port


def second_up(daemon: Daemon) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FLEET, "up"], env=daemon.env, capture_output=True, text=True, timeout=60
    )


def test_the_state_dir_lock_is_exclusive_and_names_its_holder(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'fleet.db'}")
    first, second = FleetLease(tmp_path, engine), FleetLease(tmp_path, engine)
    first.acquire()
    with pytest.raises(LeaseHeld, match=f"pid {os.getpid()} on "):
        second.acquire()
    first.release()
    second.acquire()  # free again once released
    second.release()
    engine.dispose()


def test_a_second_daemon_on_the_same_state_dir_refuses_and_touches_nothing(make_daemon):
    daemon = make_daemon("process")
    daemon.fleet("spawn", "1", "--wait")
    before = daemon.agents()
    intruder = Daemon(daemon.state_dir, free_port(), "intruder", "process")
    refused = second_up(intruder)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: another daemon runs the fleet in {daemon.state_dir}: ")
    assert f"pid {daemon.process.pid} on " in line
    after = daemon.agents()
    assert [(a["id"], a["container_id"], a["restarts"]) for a in after] == [
        (a["id"], a["container_id"], a["restarts"]) for a in before
    ]


@pytest.mark.postgres
def test_a_second_daemon_on_the_same_database_refuses_until_the_holder_dies(
    make_daemon, postgres_url, tmp_path
):
    daemon = make_daemon("process", FLEET_DATABASE_URL=postgres_url)
    other = Daemon(
        tmp_path / "other-state",
        free_port(),
        "other",
        "process",
        {"FLEET_DATABASE_URL": postgres_url},
    )
    other.state_dir.mkdir()
    refused = second_up(other)
    assert refused.returncode == 1
    assert "another daemon runs the fleet on this database: " in refused.stderr
    assert f"pid {daemon.process.pid} on " in refused.stderr

    daemon.kill()  # its connection, and with it the lock, dies with it
    try:
        other.start()
        assert other.api("GET", "/healthz").json()["status"] == "ok"
    finally:
        other.stop()
