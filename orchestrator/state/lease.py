"""One daemon per fleet: an exclusive lock on the state dir and, when the store is
PostgreSQL, a session advisory lock on the database, both held for the daemon's life.

A second daemon on the same state dir or the same database refuses to start, names the
holder (host, pid, since when) and touches nothing. Both locks die with their holder's
process: the kernel drops the file lock, and PostgreSQL the advisory lock when the
holder's connection closes, so a new daemon can take over at once, and never while the
old one can still write (its connection, and every transaction on it, is gone first).
A holder that loses its database lock (the connection broke) must stop acting until
`regain()` takes it back; `held()` is how it finds out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from orchestrator.state.errors import LeaseHeld

LOCK_FILE = "daemon.lock"
# The advisory lock's key: one per database, whatever the instance name, since two
# instances on one store fight over the same rows.
_ADVISORY_KEY = 0x666C6565  # "flee"
_APP_PREFIX = "fleet-daemon: "


def _holder() -> str:
    """This process, as a second daemon will be told of it (fits PostgreSQL's 63-character
    application_name with its prefix)."""
    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%MZ")
    return f"pid {os.getpid()} on {socket.gethostname()[:24]} since {since}"


class FleetLease:
    """The locks that make this process the one daemon of its fleet."""

    def __init__(self, state_dir: Path, engine: sa.Engine) -> None:
        self.path = state_dir / LOCK_FILE
        self.engine = engine
        self._file: int | None = None
        self._connection: sa.Connection | None = None
        self._lock = threading.Lock()  # the reconciler and the keeper share the connection

    def acquire(self) -> None:
        """Take both locks, or raise LeaseHeld naming the daemon that holds them."""
        self._lock_state_dir()
        try:
            if self.engine.dialect.name == "postgresql":
                self._lock_database()
        except BaseException:
            self.release()
            raise

    def _lock_state_dir(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LeaseHeld(
                f"another daemon runs the fleet in {self.path.parent}: {holder}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder().encode(), 0)
        self._file = fd

    def _lock_database(self) -> None:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        me = f"{_APP_PREFIX}{_holder()}"[:63]
        connection.execute(sa.text("SELECT set_config('application_name', :me, false)"), {"me": me})
        got = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _ADVISORY_KEY}
        )
        if got.scalar():
            self._connection = connection
            return
        name = connection.execute(
            sa.text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a"
                " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = :key AND l.granted"
                " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"key": _ADVISORY_KEY},
        ).scalar()
        connection.close()
        holder = (name or "").removeprefix(_APP_PREFIX) or "unknown"
        raise LeaseHeld(f"another daemon runs the fleet on this database: {holder}")

    def held(self) -> bool:
        """Whether this daemon still holds its database lock (always, on SQLite)."""
        with self._lock:
            return self._held()

    def _held(self) -> bool:
        if self._connection is None:
            return self._file is not None and self.engine.dialect.name != "postgresql"
        try:
            mine = self._connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND objid = :key AND pid = pg_backend_pid() AND granted"
                ),
                {"key": _ADVISORY_KEY},
            )
            return bool(mine.scalar())
        except sa.exc.SQLAlchemyError:
            return False

    def regain(self) -> None:
        """Take the database lock again after its connection broke: LeaseHeld if another
        daemon holds it now, DatabaseError while the database is still away."""
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    self._connection.close()
                self._connection = None
            self._lock_database()

    def release(self) -> None:
        """Let go of both locks (a dead process lets go of them anyway)."""
        if self._connection is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._connection.close()
            self._connection = None
        if self._file is not None:
            os.close(self._file)
            self._file = None
