"""Backups: a copy of a SQLite store restores into PostgreSQL with every row, refuses
what it must and, refusing, changes nothing; an interrupted backup leaves the last one
whole; and a running Docker fleet backed up, its daemon killed, restored into a fresh
state dir and store, comes back whole: the same containers adopted, none restarted."""

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from orchestrator.lifecycle import EventKind
from orchestrator.state.backup import BadBackup, Header, header, restore, write
from orchestrator.state.db import open_store, schema_revision
from orchestrator.state.errors import Conflict, DatabaseError
from orchestrator.state.orders import OrderBook, PlacedOrder
from orchestrator.state.rollouts import RolloutBook
from orchestrator.state.tables import Agent, AgentEvent, FleetState
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
    written = write(sqlite_store, "prod", KEY, path)
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the key
    assert written["agents"] == 2 and written["agent_events"] >= 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []

    target = open_store(postgres_url)
    try:
        found = header(path)
        assert found == Header("prod", schema_revision(sqlite_store), KEY)
        assert restore(target, path, found) == written
        assert write(target, "prod", KEY, tmp_path / "copy.backup") == written
        restored = target.get(agents[0].id)
        assert (restored.container_id, restored.equity) == ("c-1", 100_000.0)
        assert target.paused() and OrderBook(target).recent(agents[0].id)[0].rationale == "because"
        # new rows take ids after the restored ones
        target.transition(agents[1].id, EventKind.ADOPTED, "again", NOW + timedelta(1))
        with target.session() as s:
            ids = [e.id for e in s.exec(select(AgentEvent))]
        assert len(ids) == len(set(ids)) == written["agent_events"] + 1

        with pytest.raises(Conflict, match="already holds agents"):
            restore(target, path, found)
        with pytest.raises(BadBackup, match="changed while it was being restored"):
            restore(target, path, Header("prod", found.revision, b"o" * 32))
    finally:
        target.engine.dispose()


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"not a backup", "is not a fleet backup (BadGzipFile)"),
        (gzip.compress(b"", mtime=0), "is not a fleet backup (empty)"),
        (gzip.compress(b"[1, 2", mtime=0), "is not a fleet backup (its first line is not JSON)"),
        (gzip.compress(b'{"format": 9}', mtime=0), "is backup format 9, not 2"),
        (
            gzip.compress(b'{"format": 1, "tables": {}}', mtime=0),
            "format 1, not 2: restore it with the",
        ),
    ],
    # gzip stamps the time into its header: ids drawn from the bytes would differ between
    # xdist's workers, which then refuse to run.
    ids=["not gzip", "empty", "not JSON", "format 9", "format 1"],
)
def test_a_file_that_is_no_backup_is_refused_by_its_first_line(tmp_path, content, said):
    path = tmp_path / "fleet.backup"
    path.write_bytes(content)
    with pytest.raises(BadBackup, match=said.replace("(", r"\(").replace(")", r"\)")):
        header(path)


def _damaged(lines: list, damage: str) -> bytes:
    """The backup's lines, damaged as `damage` says, gzipped again."""
    tables = [None] + [line[0] for line in lines[1:]]  # the first line is the header
    first_agent, first_event = tables.index("agents"), tables.index("agent_events")
    agent, event = lines[first_agent][1], lines[first_event][1]
    if damage == "unknown column":
        agent["nope"] = 1
    elif damage == "missing column":
        del agent["name"]
    elif damage == "bad time":
        event["at"] = "yesterday"
    elif damage == "not a pair":
        lines[first_agent] = {"agents": agent}
    elif damage == "unknown table":
        lines.insert(first_agent, ["nope", {}])
    elif damage == "out of order":
        lines.insert(first_event + 1, lines.pop(first_agent))
    elif damage == "a row lost":
        del lines[-2]
    elif damage == "cut short":
        del lines[-1]
    elif damage == "a line after the last":
        lines.append(lines[first_agent])
    elif damage == "short key":
        lines[0]["key"] = base64.b64encode(b"abc").decode()
    elif damage == "duplicate id":  # whole rows, refused only by the database, mid-restore
        lines[first_agent + 1][1]["id"] = agent["id"]
    body = gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    return body[:-40] if damage == "gzip cut" else body


DAMAGES = [
    ("unknown column", "table agents, row 0 has columns the table lacks: 'nope'"),
    ("missing column", "table agents, row 0 lacks columns: name"),
    ("bad time", "table agent_events, row 0 has a time that is not ISO 8601 in column at"),
    ("not a pair", "line 2 is not a [table, row] pair"),
    ("unknown table", "line 2 has a table this version does not know: 'nope'"),
    ("out of order", ": table agents after agent_events"),
    ("a row lost", "the last, counts schedules: '1', but the file holds 0"),
    ("cut short", "is cut short: it ends before its last line"),
    ("a line after the last", "follows the last line"),
    ("gzip cut", "is cut short or damaged after line"),
    ("short key", "its instance key is not 32 bytes in base64"),
    ("duplicate id", "UNIQUE constraint failed: agents.id"),
]


@pytest.mark.parametrize(("damage", "said"), DAMAGES)
def test_a_damaged_backup_is_refused_by_name_and_changes_nothing(
    sqlite_store, tmp_path, damage, said
):
    a_fleet(sqlite_store)
    good = tmp_path / "good.backup"
    write(sqlite_store, "prod", KEY, good)
    lines = [json.loads(line) for line in gzip.decompress(good.read_bytes()).splitlines()]
    bad = tmp_path / "bad.backup"
    bad.write_bytes(_damaged(lines, damage))
    target = open_store(f"sqlite:///{tmp_path / 'target.db'}")
    try:
        with pytest.raises((BadBackup, DatabaseError)) as refused:
            restore(target, bad, header(bad))
        assert said in str(refused.value)
        with target.session() as s:  # and what it deleted first is back
            assert s.exec(select(Agent)).all() == []
            assert s.exec(select(FleetState)).first() is not None
    finally:
        target.engine.dispose()


def test_an_interrupted_backup_leaves_the_last_one_whole(sqlite_store, tmp_path):
    a_fleet(sqlite_store)
    path = tmp_path / "fleet.backup"
    write(sqlite_store, "prod", KEY, path)
    before = path.read_bytes()
    with sqlite_store.engine.begin() as connection:  # a table the snapshot reads last goes
        connection.execute(sa.text("DROP TABLE reports"))
    with pytest.raises(DatabaseError, match="no such table: reports"):
        write(sqlite_store, "prod", KEY, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_the_cli_refuses_a_damaged_backup_or_a_file_it_cannot_write_without_a_trace(
    sqlite_store, tmp_path
):
    a_fleet(sqlite_store)
    good = tmp_path / "good.backup"
    write(sqlite_store, "prod", KEY, good)
    lines = [json.loads(line) for line in gzip.decompress(good.read_bytes()).splitlines()]
    bad = tmp_path / "bad.backup"
    bad.write_bytes(_damaged(lines, "a row lost"))
    target = Daemon(
        tmp_path / "state",
        free_port(),
        "prod",
        "process",
        {"FLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'target.db'}"},
    )

    notes = tmp_path / "notes.txt"
    notes.write_text("not a backup\n")
    stranger = target.fleet("restore", str(notes))
    assert stranger.returncode == 2  # a bad argument
    assert stranger.stderr == f"error: {notes} is not a fleet backup (BadGzipFile)\n"
    refused = target.fleet("restore", str(bad))
    assert refused.returncode == 2, refused.stderr
    assert "restore failed: " in refused.stderr and "counts schedules: '1'" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (target.state_dir / "fleet.key").exists()  # the key goes in last, if at all
    restored = target.fleet("restore", str(good))  # nothing left behind stands in its way
    assert restored.returncode == 0 and "2 agents" in restored.stdout, restored.stderr

    nowhere = tmp_path / "no-such-folder" / "fleet.backup"
    unwritten = target.fleet("backup", str(nowhere))
    assert unwritten.returncode == 1, unwritten.stderr
    assert (
        unwritten.stderr
        == f"error: backup failed: cannot write {nowhere}: No such file or directory\n"
    )
    dot = target.fleet("backup", "")
    assert dot.returncode == 2
    assert dot.stderr == "error: '.' is not a file name: give the file to write the backup to\n"


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
    assert refused.returncode == 2 and f"FLEET_INSTANCE={instance}" in refused.stderr
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
