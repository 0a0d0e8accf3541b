"""Opening the store: the engine, its migrations, and the check that says why it failed.

SQLite in the state dir by default, PostgreSQL through `FLEET_DATABASE_URL`; the schema
is owned by the Alembic migrations in `state/migrations`, applied by `open_store`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlmodel import create_engine

from orchestrator.keys import masked_url
from orchestrator.state.errors import StoreUnavailable, failure_reason
from orchestrator.state.store import Store

_MIGRATIONS = Path(__file__).with_name("migrations")


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def schema_head() -> str:
    """The newest migration's revision: the schema this code expects."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command  # only start-up needs alembic; keep it off the import path

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def connect(url: str) -> sa.Engine:
    """An engine on the store at `url` that has answered once (nothing is migrated yet),
    or StoreUnavailable saying why not."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        where = masked_url(url)
        raise StoreUnavailable(f"cannot open the store at {where}: {failure_reason(exc)}") from None
    return engine


def open_store(url: str) -> Store:
    """Connect to the store at `url` and apply pending migrations."""
    engine = connect(url)
    migrate(engine)
    return Store(engine)


def existing_store(url: str) -> Store | None:
    """The store at `url` without creating or migrating it: None when its SQLite file
    is missing."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return Store(sa.create_engine(url))


def schema_revision(store: Store) -> str | None:
    """The migration the store's schema is at (None before the first), or
    StoreUnavailable saying why it cannot be read."""
    try:
        with store.engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            current = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            return current.scalar()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read it: {failure_reason(exc)}") from None
