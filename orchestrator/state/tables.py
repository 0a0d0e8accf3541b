"""Every table of the store, in one place; the Alembic migrations own their schema.

Timestamps are stored with their zone where the database keeps one; SQLite drops it, so
everything read back goes through `utc()`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utc(moment: datetime | None) -> datetime | None:
    """Attach UTC to a timestamp read back from SQLite, which drops the zone."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


class Agent(SQLModel, table=True):
    """One agent: identity, desired phase and the last things observed about it."""

    __tablename__ = "agents"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(unique=True, max_length=64)
    strategy: str = Field(max_length=32)
    personality: str | None = None  # JSON, as sampled at spawn
    phase: str = Field(index=True, max_length=16)
    spawn_key: str | None = Field(default=None, index=True, max_length=64)
    container_id: str | None = Field(default=None, max_length=80)
    token_generation: int = 0
    token_hash: str | None = Field(default=None, unique=True, max_length=64)
    platform_user_id: str | None = Field(default=None, max_length=64)
    platform_username: str | None = Field(default=None, max_length=64)
    credentials: str | None = Field(default=None, repr=False)  # Fernet-encrypted JSON
    provision_attempts: int = 0
    next_provision_at: datetime | None = Field(default=None, sa_type=_tz())
    last_cycle: int | None = Field(default=None, sa_type=sa.BigInteger)
    equity: float | None = None
    cash: float | None = None
    open_positions: int | None = None
    orders_submitted: int | None = Field(default=None, sa_type=sa.BigInteger)
    # of orders_submitted (both since the agent started)
    orders_filled: int | None = Field(default=None, sa_type=sa.BigInteger)
    # on the market's current day, as the agent counts
    orders_today: int | None = Field(default=None, sa_type=sa.BigInteger)
    starting_equity: float | None = None  # the first equity reported: P&L is against it
    day_start_equity: float | None = None  # the last equity before the market day `equity_day`
    equity_day: str | None = Field(default=None, max_length=10)
    sampled_at: datetime | None = Field(default=None, sa_type=_tz())  # last equity sample
    last_error: str | None = None
    reason: str | None = None
    restarts: int = 0  # every restart of its workload, ever
    failures: int = 0  # consecutive failures; reset after a healthy stretch
    next_restart_at: datetime | None = Field(default=None, sa_type=_tz())
    container_started_at: datetime | None = Field(default=None, sa_type=_tz())
    healthy_since: datetime | None = Field(default=None, sa_type=_tz())
    node: str | None = Field(default=None, max_length=100)  # where its workload runs
    # The last failure its runtime restarted by itself (Swarm) that has been counted
    failure_seen_at: datetime | None = Field(default=None, sa_type=_tz())
    failed_at: datetime | None = Field(default=None, sa_type=_tz())  # its last failure
    failed_spec: str | None = Field(default=None, max_length=64)  # what it ran then
    flatten_deadline: datetime | None = Field(default=None, sa_type=_tz())
    created_at: datetime = Field(sa_type=_tz())
    updated_at: datetime = Field(sa_type=_tz())
    last_heartbeat_at: datetime | None = Field(default=None, sa_type=_tz())
    # JSON list of {symbol, qty, avg_price, price, unrealized_pl}, as the platform last
    # answered the agent's portfolio call through the relay, and when
    positions: str | None = None
    positions_at: datetime | None = Field(default=None, sa_type=_tz())
    peak_equity: float | None = None  # the highest equity reported
    alarms: str | None = Field(default=None, max_length=200)  # standing AlertKinds, comma-separated
    # JSON {event type: {score, trades, weight}}: its catalyst learning, as last reported
    catalysts: str | None = None
    # JSON {symbol: {catalyst, entry}}: the event that opened each position, as last reported
    open_trades: str | None = None


class AgentEvent(SQLModel, table=True):
    """One entry of an agent's lifecycle timeline."""

    __tablename__ = "agent_events"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=36)
    at: datetime = Field(sa_type=_tz())
    kind: str = Field(max_length=32)
    message: str = ""


class EquitySample(SQLModel, table=True):
    """An agent's equity at one moment: the history behind the dashboard's chart."""

    __tablename__ = "equity_samples"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    at: datetime = Field(sa_type=_tz())
    equity: float


class OrderRecord(SQLModel, table=True):
    """One order of an agent, as the platform answered it through the gateway's relay.
    Kept past the agent's retirement, when its platform account is disabled. A replayed
    submission updates its row: `(agent_id, client_order_id)` is unique."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("agent_id", "client_order_id", name="uq_orders_agent_client_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    client_order_id: str = Field(max_length=64)
    order_id: str | None = Field(default=None, max_length=64)
    symbol: str = Field(max_length=16)
    side: str = Field(max_length=8)
    status: str = Field(max_length=16)
    qty: float  # filled quantity
    price: float | None = None  # average fill price
    rationale: str | None = None  # the agent's words: untrusted
    reject_reason: str | None = None
    placed_at: datetime = Field(sa_type=_tz())  # market time, as the platform stamped it
    market_day: str = Field(index=True, max_length=10)  # the exchange's date of placed_at
    recorded_at: datetime = Field(sa_type=_tz())  # wall time


class Follow(SQLModel, table=True):
    """An agent following an account on the platform, as the platform confirmed it through
    the relay (the account is another agent's `platform_user_id`, or a person's)."""

    __tablename__ = "follows"

    agent_id: str = Field(foreign_key="agents.id", primary_key=True, max_length=36)
    followee_user_id: str = Field(primary_key=True, max_length=64)
    since: datetime = Field(sa_type=_tz())  # wall time


class DecisionRecord(SQLModel, table=True):
    """One decision of an agent as the agent recorded it: untrusted JSON, checked for shape
    and size at the gateway. `(agent_id, cycle)` is unique, so a resent batch adds nothing."""

    __tablename__ = "decisions"
    __table_args__ = (sa.UniqueConstraint("agent_id", "cycle", name="uq_decisions_agent_cycle"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    cycle: int = Field(sa_type=sa.BigInteger())
    decided_at: datetime = Field(sa_type=_tz())  # market time
    strategy: str = Field(max_length=40)
    orders: int  # how many orders it sent
    social: int  # how many followed accounts' trades it saw
    record: str  # the JSON record
    recorded_at: datetime = Field(sa_type=_tz(), index=True)  # wall time


class DecisionOrder(SQLModel, table=True):
    """Which decision sent an order: `fleet why` starts here."""

    __tablename__ = "decision_orders"

    agent_id: str = Field(foreign_key="agents.id", primary_key=True, max_length=36)
    client_order_id: str = Field(primary_key=True, max_length=64)
    decision_id: int = Field(foreign_key="decisions.id", index=True)


class FleetState(SQLModel, table=True):
    """Fleet-wide switches; exactly one row (id 1)."""

    __tablename__ = "fleet_state"

    id: int = Field(default=1, primary_key=True)
    paused: bool = False
    changed_at: datetime | None = Field(default=None, sa_type=_tz())


class RolloutRecord(SQLModel, table=True):
    """One rollout of a new agent image over the fleet (the latest one is in force)."""

    __tablename__ = "rollouts"

    id: int | None = Field(default=None, primary_key=True)
    old_image: str = Field(max_length=100)
    new_image: str = Field(max_length=100)
    state: str = Field(max_length=16)  # a RolloutState
    admitted: str = "[]"  # JSON list of the agent ids admitted to the new image
    started_at: datetime = Field(sa_type=_tz())
    step_at: datetime = Field(sa_type=_tz())  # when the latest batch was admitted
    finished_at: datetime | None = Field(default=None, sa_type=_tz())
    reason: str | None = None  # why it was rolled back


class Alert(SQLModel, table=True):
    """Something the operator must hear about, kept until delivered (an outbox)."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=_tz())
    kind: str = Field(max_length=32)
    agent_id: str | None = Field(default=None, foreign_key="agents.id", max_length=36)
    text: str
    # pending, then sent | failed (gave up) | logged (no webhook is configured)
    delivery: str = Field(default="pending", index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=_tz())
    last_error: str | None = None


class ProviderUsage(SQLModel, table=True):
    """Upstream calls made to one data provider on one UTC day."""

    __tablename__ = "provider_usage"

    provider: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=10)
    calls: int = 0


class LlmUsage(SQLModel, table=True):
    """Tokens and dollars one agent spent on the LLM on one UTC day."""

    __tablename__ = "llm_usage"

    agent_id: str = Field(primary_key=True, max_length=36)
    day: str = Field(primary_key=True, max_length=10)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class Schedule(SQLModel, table=True):
    """One schedule: its kind, its spec (JSON) and how its runs went."""

    __tablename__ = "schedules"

    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=16)  # ramp | report
    spec: str
    created_at: datetime = Field(sa_type=_tz())
    runs: int = 0
    last_run_at: datetime | None = Field(default=None, sa_type=_tz())
    last_result: str | None = None
    done_at: datetime | None = Field(default=None, sa_type=_tz())  # a ramp at its target


class Report(SQLModel, table=True):
    """A fleet report; `key` is `<schedule>:<day>` for scheduled ones, so a day has one."""

    __tablename__ = "reports"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)
    at: datetime = Field(sa_type=_tz())
    body: str
