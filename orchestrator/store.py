"""The orchestrator's store: agents and their lifecycle timeline (desired state, DESIGN §2).

SQLite in the state dir by default, PostgreSQL through `FLEET_DATABASE_URL`; the schema
is owned by the Alembic migrations in `orchestrator/migrations`, applied by `open_store`.
Every phase change is written together with the event that explains it, in one
transaction, so the timeline can never disagree with the row.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from orchestrator.phases import FINAL, Phase
from orchestrator.settings import masked_url

_MIGRATIONS = Path(__file__).with_name("migrations")
_SPAWN_NAMESPACE = uuid.UUID("5f0c2a8e-4d0b-4f7e-9a51-2b1f8d6c3e70")


class StoreError(Exception):
    """Base of the store's errors; messages are safe to show an operator."""


class NotFound(StoreError):
    """No agent matches the reference."""


class Ambiguous(StoreError):
    """An id prefix matches more than one agent."""


class Conflict(StoreError):
    """The request contradicts what the store already holds."""


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
    last_cycle: int | None = None
    equity: float | None = None
    cash: float | None = None
    open_positions: int | None = None
    orders_submitted: int | None = None
    orders_filled: int | None = None  # of orders_submitted (both since the agent started)
    orders_today: int | None = None  # on the market's current day, as the agent counts
    starting_equity: float | None = None  # the first equity reported: P&L is against it
    day_start_equity: float | None = None  # the last equity before `equity_day` (UTC) began
    equity_day: str | None = Field(default=None, max_length=10)
    sampled_at: datetime | None = Field(default=None, sa_type=_tz())  # last equity sample
    last_error: str | None = None
    reason: str | None = None
    restarts: int = 0  # every restart of its workload, ever
    failures: int = 0  # consecutive failures; reset after a healthy stretch
    next_restart_at: datetime | None = Field(default=None, sa_type=_tz())
    container_started_at: datetime | None = Field(default=None, sa_type=_tz())
    healthy_since: datetime | None = Field(default=None, sa_type=_tz())
    flatten_deadline: datetime | None = Field(default=None, sa_type=_tz())
    created_at: datetime = Field(sa_type=_tz())
    updated_at: datetime = Field(sa_type=_tz())
    last_heartbeat_at: datetime | None = Field(default=None, sa_type=_tz())


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


class FleetState(SQLModel, table=True):
    """Fleet-wide switches; exactly one row (id 1)."""

    __tablename__ = "fleet_state"

    id: int = Field(default=1, primary_key=True)
    paused: bool = False
    changed_at: datetime | None = Field(default=None, sa_type=_tz())


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


def spawn_ids(key: str, count: int) -> list[str]:
    """Agent ids of one spawn request: the same key always names the same agents."""
    return [str(uuid.uuid5(_SPAWN_NAMESPACE, f"{key}:{i}")) for i in range(count)]


def agent_name(agent_id: str, personality_name: str | None = None) -> str:
    """A short, stable, container-name-safe name: the personality's name plus an id part."""
    if personality_name:
        return f"{personality_name}-{agent_id[:4]}"
    return f"agent-{agent_id[:8]}"


class Store:
    """Transactions over the agents and events tables."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Serialises count-then-act operations (scale) within this daemon.
        self._scale_lock = threading.Lock()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- spawning -----------------------------------------------------------

    def spawn(
        self,
        key: str,
        personalities: Sequence[dict],
        token_hash_for: Callable[[str], str],
        now: datetime,
    ) -> tuple[list[Agent], bool]:
        """Create one pending agent per personality for spawn `key`, or replay that spawn.

        Returns the agents and whether they were created now; `token_hash_for(agent_id)`
        gives the hash of each new agent's first gateway token. The same key with other
        personalities is a Conflict.
        """
        ids = spawn_ids(key, len(personalities))
        wanted = [json.dumps(p, sort_keys=True) for p in personalities]
        with self._session() as s:
            earlier = s.exec(select(Agent).where(Agent.spawn_key == key)).all()
            if earlier:
                earlier = sorted(earlier, key=lambda a: ids.index(a.id) if a.id in ids else -1)
                if [a.personality for a in earlier] != wanted:
                    raise Conflict(f"spawn key {key!r} was already used for a different request")
                return earlier, False
            agents = [
                Agent(
                    id=agent_id,
                    name=agent_name(agent_id, personality.get("name")),
                    strategy=personality["strategy"],
                    personality=text,
                    phase=Phase.PENDING,
                    spawn_key=key,
                    token_hash=token_hash_for(agent_id),
                    created_at=now,
                    updated_at=now,
                )
                for agent_id, personality, text in zip(ids, personalities, wanted, strict=True)
            ]
            s.add_all(agents)
            s.flush()
            for agent in agents:
                message = f"spawned with strategy {agent.strategy}"
                s.add(AgentEvent(agent_id=agent.id, at=now, kind="created", message=message))
            s.commit()
            return agents, True

    def scale(
        self,
        size: int,
        personalities_for: Callable[[int, str], Sequence[dict]],
        token_hash_for: Callable[[str], str],
        now: datetime,
        newest_first: bool = True,
    ) -> tuple[list[Agent], list[Agent]]:
        """Make the number of live (not retiring) agents `size`: spawn the missing ones
        with `personalities_for(count, spawn_key)`, or retire the surplus, newest first
        unless told otherwise. Returns (spawned, retiring); at the size already, nothing."""
        with self._scale_lock:
            live = self.live()
            if size > len(live):
                key = f"scale-{uuid.uuid4().hex}"
                agents, _ = self.spawn(
                    key, personalities_for(size - len(live), key), token_hash_for, now
                )
                return agents, []
            excess = len(live) - size
            surplus = live[::-1][:excess] if newest_first else live[:excess]
            retiring = [
                self.request_retire(agent.id, now, why=f"the fleet was scaled to {size}")
                for agent in surplus
            ]
            return [], retiring

    # -- reading ------------------------------------------------------------

    def agents(self, phases: Iterable[str] | None = None) -> list[Agent]:
        """Agents, oldest first, optionally only those in `phases`."""
        query = select(Agent).order_by(col(Agent.created_at), col(Agent.id))
        if phases is not None:
            query = query.where(col(Agent.phase).in_(list(phases)))
        with self._session() as s:
            return list(s.exec(query).all())

    def live(self) -> list[Agent]:
        """The agents that count toward the fleet's size: neither over nor retiring."""
        return self.agents(set(Phase) - FINAL - {Phase.RETIRING})

    def get(self, agent_id: str) -> Agent:
        """The agent with exactly this id."""
        with self._session() as s:
            agent = s.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}")
        return agent

    def resolve(self, ref: str) -> Agent:
        """The agent named by an id, a name or a unique id prefix."""
        with self._session() as s:
            exact = s.exec(select(Agent).where((Agent.id == ref) | (Agent.name == ref))).first()
            if exact is not None:
                return exact
            matches = s.exec(
                select(Agent).where(col(Agent.id).startswith(ref, autoescape=True)).limit(2)
            ).all()
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise Ambiguous(f"{ref!r} matches several agents; give more of the id")
        raise NotFound(f"no agent {ref!r}")

    def equity_history(self, agent_id: str, limit: int = 500) -> list[tuple[datetime, float]]:
        """An agent's equity samples as (moment, equity), oldest first (the latest `limit`)."""
        query = (
            select(EquitySample)
            .where(EquitySample.agent_id == agent_id)
            .order_by(col(EquitySample.at).desc())
            .limit(limit)
        )
        with self._session() as s:
            return [(utc(e.at), e.equity) for e in reversed(s.exec(query).all())]

    def equity_at(
        self, moment: datetime, lookback: timedelta = timedelta(days=1)
    ) -> dict[str, float]:
        """Each agent's equity as of `moment`: its last sample in the `lookback` before,
        or for an agent that first reported later, its first sample."""
        before = (
            select(EquitySample.agent_id, sa.func.max(EquitySample.id))
            .where(EquitySample.at <= moment, EquitySample.at > moment - lookback)
            .group_by(EquitySample.agent_id)
        )
        after = (
            select(EquitySample.agent_id, sa.func.min(EquitySample.id))
            .where(EquitySample.at > moment)
            .group_by(EquitySample.agent_id)
        )
        with self._session() as s:
            chosen = dict(s.exec(after).all())
            chosen.update(dict(s.exec(before).all()))
            if not chosen:
                return {}
            rows = s.exec(
                select(EquitySample.agent_id, EquitySample.equity).where(
                    col(EquitySample.id).in_(list(chosen.values()))
                )
            ).all()
        return dict(rows)

    def count_events(self, kinds: Iterable[str], since: datetime) -> int:
        """How many timeline entries of these kinds were written since `since`."""
        query = (
            select(sa.func.count())
            .select_from(AgentEvent)
            .where(col(AgentEvent.kind).in_(list(kinds)))
            .where(AgentEvent.at >= since)
        )
        with self._session() as s:
            return int(s.exec(query).one())

    def recent_events(self, limit: int = 20) -> list[tuple[AgentEvent, str]]:
        """The fleet's latest timeline entries with their agent's name, newest first."""
        query = (
            select(AgentEvent, Agent.name)
            .join(Agent, col(Agent.id) == col(AgentEvent.agent_id))
            .order_by(col(AgentEvent.id).desc())
            .limit(limit)
        )
        with self._session() as s:
            return [(event, name) for event, name in s.exec(query).all()]

    def by_token_hash(self, digest: str) -> Agent | None:
        """The agent holding the token with this hash, if any."""
        with self._session() as s:
            return s.exec(select(Agent).where(Agent.token_hash == digest)).first()

    def events(self, agent_id: str, limit: int = 200) -> list[AgentEvent]:
        """An agent's timeline, oldest first (the most recent `limit` entries)."""
        query = (
            select(AgentEvent)
            .where(AgentEvent.agent_id == agent_id)
            .order_by(col(AgentEvent.id).desc())
            .limit(limit)
        )
        with self._session() as s:
            return list(reversed(s.exec(query).all()))

    # -- transitions --------------------------------------------------------

    def transition(
        self,
        agent_id: str,
        kind: str,
        message: str,
        now: datetime,
        *,
        phase: Phase | None = None,
        expect: Iterable[Phase] | None = None,
        alert: tuple[str, str] | None = None,
        **fields: object,
    ) -> Agent | None:
        """Update an agent and append the event that explains it, atomically.

        With `expect`, nothing changes (and None is returned) unless the agent is in one
        of those phases: a guard against acting on a decision that went stale. `alert`
        (kind, text) is queued for delivery in the same transaction, so it is sent once.
        """
        with self._session() as s:
            agent = s.get(Agent, agent_id, with_for_update=True)
            if agent is None:
                raise NotFound(f"no agent {agent_id!r}")
            if expect is not None and agent.phase not in set(expect):
                return None
            if phase is not None:
                agent.phase = phase
            for name, value in fields.items():
                setattr(agent, name, value)
            agent.updated_at = now
            s.add(agent)
            s.add(AgentEvent(agent_id=agent_id, at=now, kind=kind, message=message))
            if alert is not None:
                s.add(Alert(at=now, kind=alert[0], agent_id=agent_id, text=alert[1]))
            s.commit()
            return agent

    def request_retire(
        self,
        agent_id: str,
        now: datetime,
        flatten_deadline: datetime | None = None,
        why: str = "requested by the operator",
    ) -> Agent:
        """Mark an agent for retirement, optionally selling its positions first (until
        `flatten_deadline`); retiring an ended or retiring agent changes nothing."""
        agent = self.get(agent_id)
        if agent.phase in FINAL or agent.phase == Phase.RETIRING:
            return agent
        how = "selling its positions first" if flatten_deadline else "positions left as they are"
        changed = self.transition(
            agent_id,
            "retire_requested",
            f"retirement {why} ({how})",
            now,
            phase=Phase.RETIRING,
            expect=set(Phase) - FINAL - {Phase.RETIRING},
            flatten_deadline=flatten_deadline,
        )
        return changed or self.get(agent_id)

    # -- fleet-wide ---------------------------------------------------------

    def paused(self) -> bool:
        """Whether the kill switch holds."""
        with self._session() as s:
            state = s.get(FleetState, 1)
            return bool(state and state.paused)

    def set_paused(self, paused: bool, now: datetime) -> bool:
        """Set the kill switch; returns whether it changed (and queues an alert if so)."""
        with self._session() as s:
            state = s.get(FleetState, 1, with_for_update=True) or FleetState(id=1)
            if state.paused == paused:
                return False
            state.paused, state.changed_at = paused, now
            s.add(state)
            text = (
                "fleet paused: agents submit no orders until `fleet resume`"
                if paused
                else "fleet resumed: agents trade again"
            )
            s.add(Alert(at=now, kind="paused" if paused else "resumed", text=text))
            s.commit()
            return True

    def alerts(self, limit: int = 100) -> list[Alert]:
        """The most recent alerts, newest first."""
        query = select(Alert).order_by(col(Alert.id).desc()).limit(limit)
        with self._session() as s:
            return list(s.exec(query).all())

    def due_alerts(self, now: datetime) -> list[Alert]:
        """Alerts waiting for (another) delivery attempt, oldest first."""
        query = (
            select(Alert)
            .where(Alert.delivery == "pending")
            .where((Alert.next_attempt_at == None) | (Alert.next_attempt_at <= now))  # noqa: E711
            .order_by(col(Alert.id))
        )
        with self._session() as s:
            return list(s.exec(query).all())

    def record_delivery(self, alert_id: int, **fields: object) -> None:
        """Store the outcome of one delivery attempt."""
        with self._session() as s:
            alert = s.get(Alert, alert_id, with_for_update=True)
            if alert is None:
                return
            for name, value in fields.items():
                setattr(alert, name, value)
            s.add(alert)
            s.commit()

    def heartbeat(
        self,
        agent_id: str,
        cycle: int,
        last_error: str | None,
        now: datetime,
        sample_every: timedelta = timedelta(minutes=5),
        **state: object,
    ) -> Agent:
        """Record a heartbeat and the account state it reports (equity, cash,
        open_positions, orders_submitted, orders_today); the first one moves a starting
        agent to running. Equity is sampled at most once per `sample_every`."""
        with self._session() as s:
            agent = s.get(Agent, agent_id, with_for_update=True)
            if agent is None:
                raise NotFound(f"no agent {agent_id!r}")
            agent.last_heartbeat_at = now
            agent.healthy_since = agent.healthy_since or now
            agent.last_cycle = cycle
            agent.last_error = last_error
            before = agent.equity
            for name, value in state.items():
                setattr(agent, name, value)
            if agent.equity is not None and agent.equity_day != (day := now.date().isoformat()):
                agent.equity_day = day
                agent.day_start_equity = before if before is not None else agent.equity
            if agent.equity is not None:
                if agent.starting_equity is None:
                    agent.starting_equity = agent.equity
                last = utc(agent.sampled_at)
                if last is None or now - last >= sample_every:
                    s.add(EquitySample(agent_id=agent_id, at=now, equity=agent.equity))
                    agent.sampled_at = now
            if agent.phase == Phase.STARTING:
                agent.phase = Phase.RUNNING
                agent.updated_at = now
                s.add(
                    AgentEvent(
                        agent_id=agent_id,
                        at=now,
                        kind="running",
                        message=f"first heartbeat (cycle {cycle})",
                    )
                )
            s.add(agent)
            s.commit()
            return agent


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


class StoreUnavailable(StoreError):
    """The store cannot be opened: unreachable, refused, or not a database."""


def check_store(url: str) -> None:
    """Open the store once (applying migrations), or raise StoreUnavailable saying why."""
    try:
        open_store(url).engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig or type(exc).__name__).strip().splitlines()[0]
        where = masked_url(url)
        raise StoreUnavailable(f"cannot open the store at {where}: {reason}") from None


def open_store(url: str) -> Store:
    """Connect to the store at `url` and apply pending migrations."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = _engine(url)
    migrate(engine)
    return Store(engine)
