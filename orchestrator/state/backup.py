"""Backups of the store: every table of the fleet, read in one consistent snapshot, with
the instance it belongs to and the instance key, in one gzipped file of JSON lines.

The format is the store's own rows, not the database's dump, so a backup of SQLite
restores into PostgreSQL and the other way round. The first line is the header (the
format, the instance, the schema revision, the instance key); then one line per row,
`[table, row]`, the tables in `TABLES` order; the last line, `["end", rows per table]`,
shows the file whole. Both ways stream, `BATCH` rows at a time: neither holds the store
in memory.

The file holds the instance key (which unseals the agents' platform credentials and
derives their gateway tokens): it is written 0600 and must be kept like the key itself.
It is written beside FILE and renamed over it once whole, so an interrupted backup leaves
the last one as it was. A restore goes only into a store with no agents, migrated to the
same schema the backup was taken at, in one transaction: a file found damaged at any
line, or cut short, changes nothing.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

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

FORMAT = 2
END = "end"  # the last line's tag, where the others name their table
BATCH = 1_000  # rows read, written and inserted at a time
COMPRESSION = 6  # gzip's level: a quarter of 9's time for a file 3 % larger (bench backup)
MAX_LINE = 64 * 1024 * 1024  # bytes; a row's largest column, a report, is far smaller
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

# Per table: its columns' names, and those that hold a time (an ISO 8601 string in a file)
_COLUMNS = {
    table: (
        frozenset(table.__table__.columns.keys()),
        tuple(c.name for c in table.__table__.columns if isinstance(c.type, sa.DateTime)),
    )
    for table in TABLES
}


class BadBackup(StoreError):
    """The file is not a backup this version can restore; the message says why."""


@dataclass(frozen=True)
class Header:
    """What a backup's first line says."""

    instance: str
    revision: str
    key: bytes


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a backup value")


_ENCODER = json.JSONEncoder(default=_plain, separators=(",", ":"))  # one, not one a line


def _line(value: object) -> bytes:
    """One line of the file (JSON escapes every newline inside it)."""
    return _ENCODER.encode(value).encode() + b"\n"


def write(store: Store, instance: str, key: bytes, path: Path) -> dict[str, int]:
    """Write every table, read in one snapshot, to `path`, readable by its owner only;
    the rows written per table."""
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=COMPRESSION) as out:
                counts = _write_rows(store, instance, key, out)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return counts


def _write_rows(store: Store, instance: str, key: bytes, out: IO[bytes]) -> dict[str, int]:
    """The header, every table's rows in one snapshot (REPEATABLE READ on PostgreSQL;
    SQLite's read transaction is one already), and the last line."""
    header = {
        "format": FORMAT,
        "instance": instance,
        "revision": schema_revision(store) or "",
        "key": base64.b64encode(key).decode(),
    }
    out.write(_line(header))
    counts = {}
    with store.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            for table in TABLES:
                name = table.__tablename__
                counts[name] = 0
                result = connection.execute(
                    sa.select(table.__table__), execution_options={"yield_per": BATCH}
                )
                for rows in result.partitions():
                    out.write(b"".join(_line([name, dict(row._mapping)]) for row in rows))
                    counts[name] += len(rows)
    out.write(_line([END, counts]))
    return counts


def header(path: Path) -> Header:
    """What the backup in `path` says it is, from its first line; BadBackup saying why it
    is not a backup this version reads."""
    with _Lines(path) as lines:
        return lines.header()


def restore(store: Store, path: Path, expected: Header) -> dict[str, int]:
    """Put the backup's rows into an empty store at the same schema, in one transaction;
    the rows restored per table. BadBackup names the first line that is not a whole row of
    its table, or a file cut short; the transaction then rolls back, and nothing changed.
    `expected` is the header the caller checked: a file changed since is refused."""
    with _Lines(path) as lines:
        if lines.header() != expected:
            raise BadBackup(f"{path} changed while it was being restored")
        revision = schema_revision(store) or ""
        if revision != expected.revision:
            raise Conflict(
                f"the backup is at schema {expected.revision}, this store at {revision}: "
                "restore with the version that took it, then upgrade"
            )
        with store.session() as s:
            if s.exec(select(Agent)).first() is not None:
                raise Conflict("the store already holds agents: restore into a fresh one")
            for table in reversed(TABLES):  # what migrations seed (the switches, a report)
                s.exec(sa.delete(table.__table__))
            counts = _insert(s, lines)
            s.commit()
    if store.engine.dialect.name == "postgresql":
        _advance_ids(store)
    return counts


def _insert(s: Session, lines: _Lines) -> dict[str, int]:
    """Insert the rows of every line after the header, `BATCH` at a time; the rows per
    table, checked against the last line's."""
    order = {table.__tablename__: index for index, table in enumerate(TABLES)}
    counts = dict.fromkeys(order, 0)
    current, batch = 0, []
    for where, line in lines:
        if not (isinstance(line, list) and len(line) == 2 and isinstance(line[0], str)):
            raise BadBackup(f"{where} is not a [table, row] pair")
        name, row = line
        if name == END:
            _flush(s, TABLES[current], batch)
            lines.end(where, row, counts)
            return counts
        index = order.get(name)
        if index is None:
            raise BadBackup(f"{where} has a table this version does not know: {quoted(name)}")
        if index < current:
            raise BadBackup(f"{where}: table {name} after {TABLES[current].__tablename__}")
        if index != current or len(batch) == BATCH:
            _flush(s, TABLES[current], batch)
            current, batch = index, []
        try:
            batch.append(_typed(TABLES[index], row))
        except _NotARow as problem:
            raise BadBackup(f"{where}: table {name}, row {counts[name]} {problem}") from None
        counts[name] += 1
    raise BadBackup(f"{lines.path} is cut short: it ends before its last line")


def _flush(s: Session, table: type[SQLModel], rows: list[dict]) -> None:
    if rows:
        s.exec(sa.insert(table.__table__), params=rows)


class _NotARow(ValueError):
    """What is wrong with a row, for BadBackup to say where."""


def _typed(table: type[SQLModel], row: object) -> dict:
    """A row as the file holds it, with its timestamps read back; _NotARow if it is not a
    whole row of this table (a backup holds every column of every row). What the columns'
    other types and their constraints refuse, the database names at the restore, which
    then changes nothing."""
    names, times = _COLUMNS[table]
    if not isinstance(row, dict):
        raise _NotARow("is not an object")
    if row.keys() != names:
        unknown, missing = sorted(row.keys() - names), sorted(names - row.keys())
        if unknown:
            named = ", ".join(quoted(column) for column in unknown[:5])
            raise _NotARow(f"has columns the table lacks: {named}")
        raise _NotARow(f"lacks columns: {', '.join(missing[:5])}")
    for column in times:
        if (value := row[column]) is not None:
            try:
                row[column] = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise _NotARow(f"has a time that is not ISO 8601 in column {column}") from None
    return row


def _advance_ids(store: Store) -> None:
    """PostgreSQL: each id sequence to the next id after the restored ones."""
    with store.session() as s:
        for table in TABLES:
            name = table.__tablename__
            if isinstance(getattr(table.__table__.columns.get("id"), "type", None), sa.Integer):
                s.exec(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                    )
                )
        s.commit()


class _Lines:
    """A backup file read a line at a time, each line's JSON with where it is in the
    file; BadBackup for a file that is not gzip, is cut short, or holds a line that is
    not JSON or is longer than `MAX_LINE`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.number = 0
        self._file: gzip.GzipFile | None = None

    def __enter__(self) -> _Lines:
        try:
            self._file = gzip.open(self.path, "rb")
        except OSError as exc:
            raise BadBackup(f"{self.path} cannot be read ({exc.strerror or exc})") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def _next(self) -> bytes | None:
        """The next line's bytes, None at the end of the file."""
        assert self._file is not None, "read inside `with`"
        try:
            raw = self._file.readline(MAX_LINE + 1)
        except (OSError, EOFError, zlib.error) as exc:
            if self.number == 0:
                raise BadBackup(
                    f"{self.path} is not a fleet backup ({type(exc).__name__})"
                ) from None
            raise BadBackup(
                f"{self.path} is cut short or damaged after line {self.number}"
            ) from None
        if not raw:
            return None
        self.number += 1
        if len(raw) > MAX_LINE:
            raise BadBackup(f"{self.path}, line {self.number} is longer than {MAX_LINE:,} bytes")
        return raw

    def header(self) -> Header:
        """The first line, checked."""
        raw = self._next()
        if raw is None:
            raise BadBackup(f"{self.path} is not a fleet backup (empty)")
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadBackup(
                f"{self.path} is not a fleet backup (its first line is not JSON)"
            ) from None
        if not isinstance(body, dict):
            raise BadBackup(f"{self.path} is not a fleet backup (its first line is not an object)")
        if body.get("format") != FORMAT:
            raise BadBackup(
                f"{self.path} is backup format {body.get('format')!r}, not {FORMAT}: restore "
                "it with the version that took it"
            )
        instance, revision = body.get("instance"), body.get("revision")
        if not isinstance(instance, str) or not instance:
            raise BadBackup(f"{self.path}: its instance is not a name")
        if not isinstance(revision, str):
            raise BadBackup(f"{self.path}: its schema revision is not text")
        key = decoded_key(body.get("key"))
        if key is None:
            raise BadBackup(f"{self.path}: its instance key is not {KEY_BYTES} bytes in base64")
        return Header(instance, revision, key)

    def __iter__(self) -> Iterator[tuple[str, object]]:
        """Each later line's JSON, with where it is (`FILE, line N`)."""
        while (raw := self._next()) is not None:
            where = f"{self.path}, line {self.number}"
            try:
                yield where, json.loads(raw)
            except ValueError:
                raise BadBackup(f"{where} is not JSON") from None

    def end(self, where: str, said: object, counts: dict[str, int]) -> None:
        """Check the last line (the rows written per table) against the rows read, and
        that nothing follows it."""
        if not isinstance(said, dict) or set(said) != set(counts):
            raise BadBackup(f"{where}, the last, does not count the rows of each table")
        for name, count in counts.items():
            if said[name] != count:
                raise BadBackup(
                    f"{where}, the last, counts {name}: {quoted(str(said[name]))}, but the "
                    f"file holds {count}"
                )
        if self._next() is not None:
            raise BadBackup(f"{self.path}, line {self.number} follows the last line")
