"""The sandbox platform's ledger: accounts, orders, positions and subscriptions.

Money is kept in integer cents, quantities as floats rounded to 1e-6 shares. Every state
change happens in one transaction that first locks the account row, so concurrent orders
of one account serialise and a `client_order_id` can fill at most once (it is also unique
per account in the schema). The tables live in their own metadata, apart from the
orchestrator's, and are created on start; this is a reference implementation, not a
production ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, UniqueConstraint, col, create_engine


class SandboxModel(SQLModel, registry=registry()):
    """Base of the sandbox tables (a metadata of their own)."""


class _UtcDateTime(sa.TypeDecorator):
    """A time with its zone on every database: SQLite keeps none, so its reads are UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, _dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _tz() -> _UtcDateTime:
    return _UtcDateTime()


class Account(SandboxModel, table=True):
    """An agent's account, created by the controller."""

    __tablename__ = "sandbox_accounts"

    user_id: str = Field(primary_key=True, max_length=36)
    username: str = Field(unique=True, max_length=64)
    email: str = Field(max_length=128)
    display_name: str = Field(max_length=100)
    profile: str = "{}"  # JSON as given by the controller
    password_hash: str = Field(max_length=64)
    status: str = Field(default="active", max_length=16)
    # 64-bit: PostgreSQL's INTEGER ends at $21.4M in cents, and opening cash may be $1e9
    cash_cents: int = Field(sa_type=sa.BigInteger)
    starting_cash_cents: int = Field(sa_type=sa.BigInteger)
    idempotency_key: str = Field(unique=True, max_length=128)
    request_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=_tz())
    disabled_at: datetime | None = Field(default=None, sa_type=_tz())
    last_login_at: datetime | None = Field(default=None, sa_type=_tz())


class Order(SandboxModel, table=True):
    """One submitted order and its outcome; immediate fills only."""

    __tablename__ = "sandbox_orders"
    __table_args__ = (UniqueConstraint("user_id", "client_order_id"),)

    order_id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="sandbox_accounts.user_id", index=True, max_length=36)
    client_order_id: str = Field(max_length=48)
    symbol: str = Field(max_length=10)
    side: str = Field(max_length=4)
    qty: float | None = None
    notional: float | None = None
    status: str = Field(max_length=16)
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    reject_reason: str | None = None
    rationale: str | None = None
    created_at: datetime = Field(sa_type=_tz())


class Position(SandboxModel, table=True):
    """Shares held of one symbol, with their total cost."""

    __tablename__ = "sandbox_positions"

    user_id: str = Field(foreign_key="sandbox_accounts.user_id", primary_key=True, max_length=36)
    symbol: str = Field(primary_key=True, max_length=10)
    qty: float
    cost_cents: int = Field(sa_type=sa.BigInteger)


class Subscription(SandboxModel, table=True):
    """One agent following another."""

    __tablename__ = "sandbox_subscriptions"

    follower_id: str = Field(
        foreign_key="sandbox_accounts.user_id", primary_key=True, max_length=36
    )
    followee_id: str = Field(
        foreign_key="sandbox_accounts.user_id", primary_key=True, max_length=36
    )
    created_at: datetime = Field(sa_type=_tz())


def sandbox_engine(url: str) -> sa.Engine:
    """An engine for the sandbox store with its tables created.

    SQLite transactions start with BEGIN IMMEDIATE, so two orders of one account cannot
    both read the old cash balance; PostgreSQL locks the account row instead.
    """
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    else:
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:  # noqa: ANN001
            dbapi_connection.isolation_level = None  # let us issue BEGIN ourselves
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

        @sa.event.listens_for(engine, "begin")
        def _begin(connection) -> None:  # noqa: ANN001
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    SandboxModel.metadata.create_all(engine)
    return engine


def filled_orders(url: str) -> int:
    """How many orders the sandbox store at `url` has filled."""
    engine = sandbox_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.select(sa.func.count()).where(col(Order.status) == "filled")
            return connection.execute(query).scalar_one()
    finally:
        engine.dispose()
