"""Backups of the store: every table of the fleet, read in one consistent snapshot, with
the instance it belongs to and the instance key, in one gzipped JSON file.

The format is the store's own rows, not the database's dump, so a backup of SQLite
restores into PostgreSQL and the other way round. The file holds the instance key (which
unseals the agents' platform credentials and derives their gateway tokens): it is
written 0600 and must be kept like the key itself. A restore goes only into a store with
no agents, migrated to the same schema the backup was taken at.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import SQLModel, select

from orchestrator.keys import KEY_BYTES, decoded_key
from orchestrator.state.db import schema_revision
from orchestrator.state.errors import Conflict, StoreError
from orchestrator.state.store import Store
from orchestrator.state.tables import (
    Agent,
    AgentEvent,
    Alert,
    DecisionOrder,
    DecisionRecord,
    EquitySample,
    FleetState,
    Follow,
    LlmUsage,
    OrderRecord,
    ProviderUsage,
    Report,
    RolloutRecord,
    Schedule,
)
from orchestrator.untrusted import quoted

FORMAT = 1
# Parents before children, so rows restore in this order.
TABLES: tuple[type[SQLModel], ...] = (
    Agent,
    AgentEvent,
    EquitySample,
    OrderRecord,
    Follow,
    DecisionRecord,
    DecisionOrder,
    FleetState,
    RolloutRecord,
    Alert,
    ProviderUsage,
    LlmUsage,
    Schedule,
    Report,
)


class BadBackup(StoreError):
    """The file is not a backup this version can restore; the message says why."""


@dataclass(frozen=True)
class Backup:
    """What a backup file holds."""

    instance: str
    revision: str
    key: bytes
    rows: dict[str, list[dict]]

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(rows) for name, rows in self.rows.items()}


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a backup value")


def take(store: Store, instance: str, key: bytes) -> Backup:
    """Read every table in one snapshot (REPEATABLE READ on PostgreSQL; SQLite's read
    transaction is one already)."""
    with store.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            rows = {
                table.__tablename__: [
                    dict(row._mapping) for row in connection.execute(sa.select(table.__table__))
                ]
                for table in TABLES
            }
    return Backup(instance, schema_revision(store) or "", key, rows)


def write(backup: Backup, path: Path) -> None:
    """Write the backup to `path`, readable by its owner only."""
    body = {
        "format": FORMAT,
        "instance": backup.instance,
        "revision": backup.revision,
        "key": base64.b64encode(backup.key).decode(),
        "tables": backup.rows,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
        out.write(json.dumps(body, default=_plain).encode())


def read(path: Path) -> Backup:
    """A backup file, its rows typed as their columns are, or BadBackup naming what is
    wrong with it. Only a whole, well-formed backup is returned: nothing has been changed
    yet when a file is refused."""
    try:
        with gzip.open(path, "rb") as f:
            body = json.loads(f.read())
    except (OSError, EOFError, ValueError) as exc:
        raise BadBackup(f"{path} is not a fleet backup ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise BadBackup(f"{path} is not a fleet backup (JSON, but not an object)")
    if body.get("format") != FORMAT:
        raise BadBackup(f"{path} is backup format {body.get('format')!r}, not {FORMAT}")
    instance, revision, tables = body.get("instance"), body.get("revision"), body.get("tables")
    if not isinstance(instance, str) or not instance:
        raise BadBackup(f"{path}: its instance is not a name")
    if not isinstance(revision, str):
        raise BadBackup(f"{path}: its schema revision is not text")
    key = decoded_key(body.get("key"))
    if key is None:
        raise BadBackup(f"{path}: its instance key is not {KEY_BYTES} bytes in base64")
    if not isinstance(tables, dict):
        raise BadBackup(f"{path}: its tables are not an object of tables")
    unknown = set(tables) - {t.__tablename__ for t in TABLES}
    if unknown:
        raise BadBackup(f"{path} has tables this version does not know: {sorted(unknown)}")
    rows = {t.__tablename__: _typed(t, tables.get(t.__tablename__, []), path) for t in TABLES}
    return Backup(instance, revision, key, rows)


def _typed(table: type[SQLModel], rows: object, path: Path) -> list[dict]:
    """A table's rows as the file holds them, with their timestamps read back; BadBackup
    naming the table, row and column of the first that is not a whole row of this table
    (a backup holds every column of every row). What the columns' other types and their
    constraints refuse, the database names at the restore, which then changes nothing."""
    name, columns = table.__tablename__, table.__table__.columns
    if not isinstance(rows, list):
        raise BadBackup(f"{path}: table {name} is not a list of rows")
    typed = []
    for index, row in enumerate(rows):
        where = f"{path}: table {name}, row {index}"
        if not isinstance(row, dict):
            raise BadBackup(f"{where} is not an object")
        unknown = sorted(set(row) - set(columns.keys()))
        missing = sorted(set(columns.keys()) - set(row))
        if unknown:
            named = ", ".join(quoted(column) for column in unknown[:5])
            raise BadBackup(f"{where} has columns the table lacks: {named}")
        if missing:
            raise BadBackup(f"{where} lacks columns: {', '.join(missing[:5])}")
        typed_row = {}
        for column, value in row.items():
            if value is not None and isinstance(columns[column].type, sa.DateTime):
                try:
                    value = datetime.fromisoformat(value)
                except (TypeError, ValueError):
                    raise BadBackup(f"{where}: column {column} is not an ISO 8601 time") from None
            typed_row[column] = value
        typed.append(typed_row)
    return typed


def restore(store: Store, backup: Backup) -> None:
    """Put the backup's rows into an empty store at the same schema, in one transaction."""
    revision = schema_revision(store) or ""
    if revision != backup.revision:
        raise Conflict(
            f"the backup is at schema {backup.revision}, this store at {revision}: restore "
            "with the version that took it, then upgrade"
        )
    with store.session() as s:
        if s.exec(select(Agent)).first() is not None:
            raise Conflict("the store already holds agents: restore into a fresh one")
        for table in reversed(TABLES):  # what migrations seed (the switches, a report)
            s.exec(sa.delete(table.__table__))
        for table in TABLES:
            rows = backup.rows.get(table.__tablename__, [])
            if rows:
                s.exec(sa.insert(table.__table__), params=rows)
        s.commit()
        if store.engine.dialect.name == "postgresql":
            for table in TABLES:  # the next id after the restored ones
                name = table.__tablename__
                if isinstance(getattr(table.__table__.columns.get("id"), "type", None), sa.Integer):
                    s.exec(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                        )
                    )
            s.commit()
