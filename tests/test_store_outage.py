"""The machine fails under the daemon: its state dir's filesystem fills up. `/healthz`
says "degraded" with the reason, the failure is logged once (not once per request), and
once space is back the agents that heartbeated through the outage are not restarted."""

import subprocess
import time

import httpx
import pytest

from orchestrator.tools.harness import Daemon, free_port, wait_until
from tests.conftest import missing


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 MiB filesystem (tmpfs) of this test's own."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        missing(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path) -> None:
    """Write until the filesystem says it is full."""
    with open(path, "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * (1 << 20))
                filler.flush()
        except OSError:
            return


def health(daemon: Daemon) -> dict:
    return httpx.get(f"{daemon.url}/healthz", timeout=5).json()


def restarts(daemon: Daemon) -> dict[str, int]:
    return {a["id"]: a["restarts"] for a in daemon.agents()}


def test_a_full_disk_degrades_health_and_punishes_no_agent(small_disk, instance):
    daemon = Daemon(
        small_disk,  # the state dir, its store and the agents' logs on the small disk
        free_port(),
        instance,
        "process",
        {"FLEET_HEARTBEAT_TIMEOUT_SECONDS": "6", "FLEET_RECONCILE_INTERVAL_SECONDS": "0.5"},
    )
    daemon.start()
    try:
        assert daemon.fleet("spawn", "2", "--wait").returncode == 0
        assert health(daemon)["status"] == "ok"
        before = restarts(daemon)

        fill(small_disk / "filler")
        degraded = wait_until(
            lambda: (h := health(daemon))["status"] == "degraded" and h, "degraded health", 30
        )
        assert any("disk almost full" in p for p in degraded["problems"])
        wait_until(
            lambda: any("store failing for heartbeats" in p for p in health(daemon)["problems"]),
            "failing heartbeats to show",
            30,
        )
        listed = daemon.fleet("ls")  # reads still work, and say nothing false
        assert listed.returncode == 0, listed.stderr
        doctor = daemon.fleet("doctor")
        assert any(
            line.startswith("FAIL") and "daemon" in line and "degraded: " in line
            for line in doctor.stdout.splitlines()
        ), doctor.stdout
        time.sleep(12)  # twice the heartbeat timeout, every heartbeat refused

        (small_disk / "filler").unlink()
        wait_until(lambda: health(daemon)["status"] == "ok", "health to come back", 30)
        agents = daemon.wait_for(
            lambda a: all(x["heartbeat_age_seconds"] < 2 for x in a), "fresh heartbeats", 30
        )
        assert restarts(daemon) == before  # the outage restarted nobody
        assert {a["phase"] for a in agents} == {"running"}
    finally:
        daemon.stop()
    log = daemon.log_path.read_text()
    failing = [line for line in log.splitlines() if "store failing for heartbeats" in line]
    assert len(failing) == 1, failing  # once per episode, not once per heartbeat
    assert "store works again for heartbeats" in log
    assert "Traceback" not in log


@pytest.mark.postgres
def test_the_database_going_away_is_said_plainly_and_restarts_nobody(make_daemon, postgres_url):
    import sqlalchemy as sa

    from orchestrator.tools.servers import TcpRelay

    url = sa.make_url(postgres_url)
    with TcpRelay(url.host, url.port) as relay:
        through = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        daemon = make_daemon(
            "process", FLEET_DATABASE_URL=through, FLEET_HEARTBEAT_TIMEOUT_SECONDS="6"
        )
        assert daemon.fleet("spawn", "2", "--wait").returncode == 0
        before = restarts(daemon)

        relay.cut()  # the database is gone, as far as the daemon can tell
        listed = daemon.fleet("ls")
        assert listed.returncode == 1
        (line,) = listed.stderr.splitlines()
        assert line.startswith("error: the store cannot be used now: "), line
        degraded = wait_until(
            lambda: (h := health(daemon))["status"] == "degraded" and h, "degraded health", 30
        )
        assert any("store failing" in p for p in degraded["problems"])
        time.sleep(12)  # twice the heartbeat timeout

        relay.restore()
        wait_until(lambda: health(daemon)["status"] == "ok", "health to come back", 60)
        daemon.wait_for(
            lambda a: all(x["heartbeat_age_seconds"] < 2 for x in a), "fresh heartbeats", 30
        )
        assert restarts(daemon) == before  # the outage restarted nobody
        assert daemon.process.poll() is None  # it took its lease back and goes on
    log = daemon.log_path.read_text()
    assert "lease on the fleet's database taken back" in log
    assert "Traceback" not in log
