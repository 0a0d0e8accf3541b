"""Backups: a copy of a SQLite store restores into PostgreSQL with every row, refuses
what it must; and a running Docker fleet backed up, its daemon killed, restored into a
fresh state dir and store, comes back whole: the same containers adopted, none restarted."""

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from orchestrator.lifecycle import EventKind
from orchestrator.state.backup import BadBackup, read, restore, take, write
from orchestrator.state.db import open_store
from orchestrator.state.errors import Conflict
from orchestrator.state.orders import OrderBook, PlacedOrder
from orchestrator.state.rollouts import RolloutBook
from orchestrator.state.tables import AgentEvent
from orchestrator.tools.harness import Daemon, free_port

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


def a_fleet(store) -> list:
    people = [{"name": f"p{i}", "strategy": "contrarian"} for i in range(2)]
    agents, _ = store.spawn("key-backup-1", people, lambda agent_id: f"h-{agent_id}", NOW)
    store.transition(agents[0].id, EventKind.ADOPTED, "adopted", NOW, container_id="c-1")
    store.heartbeat(agents[0].id, 1, None, NOW, equity=100_000.0)
    order = PlacedOrder("c1", "o1", "AAPL", "buy", "filled", 1, 10.0, None, NOW, "2026-12-01")
    OrderBook(store).record(agents[0].id, order, "because", NOW)
    RolloutBook(store).begin("sha256:a", "sha256:a", [], NOW)
    store.set_paused(True, NOW)
    return agents


@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'source.db'}")
    yield store
    store.engine.dispose()


def test_a_sqlite_backup_restores_into_postgresql_whole(sqlite_store, postgres_url, tmp_path):
    agents = a_fleet(sqlite_store)
    path = tmp_path / "fleet.backup"
    write(take(sqlite_store, "prod", KEY), path)
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the key

    target = open_store(postgres_url)
    try:
        backup = read(path)
        assert (backup.instance, backup.key) == ("prod", KEY)
        restore(target, backup)
        copy = take(target, "prod", KEY)
        assert copy.counts() == backup.counts() and copy.counts()["agents"] == 2
        restored = target.get(agents[0].id)
        assert (restored.container_id, restored.equity) == ("c-1", 100_000.0)
        assert target.paused() and OrderBook(target).recent(agents[0].id)[0].rationale == "because"
        # new rows take ids after the restored ones
        target.transition(agents[1].id, EventKind.ADOPTED, "again", NOW + timedelta(1))
        with target.session() as s:
            ids = [e.id for e in s.exec(select(AgentEvent))]
        assert len(ids) == len(set(ids)) == copy.counts()["agent_events"] + 1

        with pytest.raises(Conflict, match="already holds agents"):
            restore(target, backup)
    finally:
        target.engine.dispose()

    path.write_bytes(gzip.compress(b'{"format": 9}'))
    with pytest.raises(BadBackup, match="format 9"):
        read(path)
    path.write_text("not a backup")
    with pytest.raises(BadBackup, match="not a fleet backup"):
        read(path)


def _damaged(tables: dict, body: dict, damage: str) -> None:
    agents, events = tables["agents"], tables["agent_events"]
    if damage == "unknown column":
        agents[0]["nope"] = 1
    elif damage == "missing column":
        del agents[0]["name"]
    elif damage == "bad time":
        events[0]["at"] = "yesterday"
    elif damage == "not rows":
        tables["agents"] = "agents"
    elif damage == "short key":
        body["key"] = base64.b64encode(b"abc").decode()
    else:  # "duplicate id": whole rows, refused only by the database, mid-restore
        agents[1]["id"] = agents[0]["id"]


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("unknown column", "table agents, row 0 has columns the table lacks: 'nope'"),
        ("missing column", "table agents, row 0 lacks columns: name"),
        ("bad time", "table agent_events, row 0: column at is not an ISO 8601 time"),
        ("not rows", "table agents is not a list of rows"),
        ("short key", "its instance key is not 32 bytes in base64"),
        ("duplicate id", "restore failed: UNIQUE constraint failed: agents.id"),
    ],
)
def test_a_damaged_backup_is_refused_by_name_and_leaves_nothing_behind(
    sqlite_store, tmp_path, damage, said
):
    a_fleet(sqlite_store)
    good = tmp_path / "good.backup"
    write(take(sqlite_store, "prod", KEY), good)
    body = json.loads(gzip.decompress(good.read_bytes()))
    _damaged(body["tables"], body, damage)
    bad = tmp_path / "bad.backup"
    bad.write_bytes(gzip.compress(json.dumps(body).encode()))
    target = Daemon(
        tmp_path / "state",
        free_port(),
        "prod",
        "process",
        {"FLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'target.db'}"},
    )

    refused = target.fleet("restore", str(bad))
    assert refused.returncode == 1 and said in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (target.state_dir / "fleet.key").exists()  # the key goes in last, if at all
    restored = target.fleet("restore", str(good))  # nothing left behind stands in its way
    assert restored.returncode == 0 and "2 agents" in restored.stdout, restored.stderr


@pytest.mark.docker
def test_a_running_fleet_backed_up_and_restored_elsewhere_is_adopted(
    docker_client, make_daemon, instance, postgres_url, tmp_path
):
    daemon = make_daemon("docker")
    assert daemon.fleet("spawn", "2", "--wait").returncode == 0
    before = {a["id"]: a["container_id"] for a in daemon.agents()}
    path = tmp_path / "[bold]fleet.backup"  # named as given, not read as markup
    backed = daemon.fleet("backup", str(path))  # while it runs
    assert backed.returncode == 0, backed.stderr
    assert "2 agents" in backed.stdout and "keep it secret" in backed.stdout
    assert f"to {path} (" in backed.stdout
    daemon.kill()

    restored = Daemon(  # on the old port: agents' gateway URL is part of their spec
        tmp_path / "restored-state",
        daemon.port,
        instance,
        "docker",
        {"FLEET_DATABASE_URL": postgres_url},
    )
    wrong = Daemon(tmp_path / "other", free_port(), "another", "docker", {})
    refused = wrong.fleet("restore", str(path))
    assert refused.returncode == 1 and f"FLEET_INSTANCE={instance}" in refused.stderr
    result = restored.fleet("restore", str(path))
    assert result.returncode == 0, result.stderr
    again = restored.fleet("restore", str(path))
    assert again.returncode == 1 and "already holds agents" in again.stderr
    restored.start()
    try:
        agents = restored.wait_for(
            lambda now: len(now) == 2 and all(a["phase"] == "running" for a in now),
            "the restored fleet heartbeating",
        )
        assert {a["id"]: a["container_id"] for a in agents} == before  # adopted, not replaced
        assert all(a["restarts"] == 0 for a in agents)
        running = docker_client.containers.list(filters={"label": f"fleet.instance={instance}"})
        assert sorted(c.id for c in running) == sorted(before.values())
    finally:
        restored.stop()
