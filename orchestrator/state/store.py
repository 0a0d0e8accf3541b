"""The agents, their timeline, the kill switch and the alert outbox (DESIGN §2 "store").

Every phase change is written together with the event that explains it, in one
transaction, so the timeline can never disagree with the row; an alert raised by a change
is queued in that same transaction, so it is sent exactly once. The store records
decisions; it never makes one.
"""

from __future__ import annotations

import difflib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from feeds.calendar import trading_day
from orchestrator.lifecycle import FINAL, LIVE, AlertKind, EventKind, Phase
from orchestrator.state.beats import Beat, Recorded, behind_message, record_beats
from orchestrator.state.changes import AgentChanges
from orchestrator.state.errors import Ambiguous, Conflict, NotFound
from orchestrator.state.tables import Agent, AgentEvent, Alert, FleetState
from orchestrator.untrusted import quoted

PAUSE_READ_SECONDS = 1.0
_IN_CHUNK = 500  # values in one `IN (...)`: well inside every backend's limit
_SPAWN_NAMESPACE = uuid.UUID("5f0c2a8e-4d0b-4f7e-9a51-2b1f8d6c3e70")


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
        self._paused: tuple[bool | None, float] = (None, 0.0)
        self.changes = AgentChanges()  # for the gateway's and the reconciler's memories

    def session(self) -> Session:
        """A session on the store's engine; the usage ledger and schedule book share it."""
        return Session(self.engine, expire_on_commit=False)

    # -- spawning -----------------------------------------------------------

    def spawn(
        self,
        key: str,
        personalities: Sequence[dict],
        token_hash_for: Callable[[str], str],
        now: datetime,
    ) -> tuple[list[Agent], bool]:
        """Create one pending agent per personality for spawn `key`, or replay that spawn:
        returns the agents and whether they were created now. `token_hash_for(agent_id)`
        gives the hash of each new agent's first gateway token. The same key with other
        personalities is a Conflict."""
        ids = spawn_ids(key, len(personalities))
        wanted = [json.dumps(p, sort_keys=True) for p in personalities]
        with self.session() as s:
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
                s.add(
                    AgentEvent(agent_id=agent.id, at=now, kind=EventKind.CREATED, message=message)
                )
            s.commit()
        self.changes.changed(ids)
        return agents, True

    # -- reading ------------------------------------------------------------

    def agents(self, phases: Iterable[str] | None = None) -> list[Agent]:
        """Agents, oldest first, optionally only those in `phases`."""
        query = select(Agent).order_by(col(Agent.created_at), col(Agent.id))
        if phases is not None:
            query = query.where(col(Agent.phase).in_(list(phases)))
        with self.session() as s:
            return list(s.exec(query).all())

    def columns(
        self, names: Sequence[str], phases: Iterable[str], ids: Sequence[str] | None = None
    ) -> list[sa.Row]:
        """Only the columns `names` of the agents in `phases` (of `ids` only, if given),
        oldest first: the light read of a loop that runs every few seconds (no ORM object
        is built)."""
        query = (
            sa.select(*(getattr(Agent, name) for name in names))
            .where(col(Agent.phase).in_(list(phases)))
            .order_by(col(Agent.created_at), col(Agent.id))
        )
        if ids is None:
            chunks = [query]
        else:
            step = range(0, len(ids), _IN_CHUNK)
            chunks = [query.where(col(Agent.id).in_(ids[i : i + _IN_CHUNK])) for i in step]
        with self.session() as s:
            return [row for chunk in chunks for row in s.execute(chunk)]

    def present(self, since: datetime) -> list[Agent]:
        """The agents in the fleet at some moment since `since`, oldest first: every
        unfinished one, and those retired or failed since (their last change)."""
        finished = col(Agent.phase).in_(list(FINAL))
        query = (
            select(Agent)
            .where(~finished | (finished & (col(Agent.updated_at) >= since)))
            .order_by(col(Agent.created_at), col(Agent.id))
        )
        with self.session() as s:
            return list(s.exec(query).all())

    def phase_counts(self) -> dict[str, int]:
        """How many agents are in each phase (only the phases some agent is in)."""
        query = sa.select(Agent.phase, sa.func.count()).group_by(col(Agent.phase))
        with self.session() as s:
            return {phase: count for phase, count in s.execute(query)}

    def live(self) -> list[Agent]:
        """The agents that count toward the fleet's size: neither over nor retiring."""
        return self.agents(LIVE)

    def get(self, agent_id: str) -> Agent:
        """The agent with exactly this id."""
        with self.session() as s:
            agent = s.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}")
        return agent

    def resolve(self, ref: str) -> Agent:
        """The agent named by an id, a name or a unique id prefix; NotFound suggests the
        names that start with `ref` or come close to it."""
        if "\x00" in ref:  # in no name or id, and PostgreSQL refuses it in a query
            raise NotFound(f"no agent {quoted(ref)}")
        with self.session() as s:
            exact = s.exec(select(Agent).where((Agent.id == ref) | (Agent.name == ref))).first()
            if exact is not None:
                return exact
            matches = s.exec(
                select(Agent).where(col(Agent.id).startswith(ref, autoescape=True)).limit(2)
            ).all()
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise Ambiguous(f"{quoted(ref)} matches several agents; give more of the id")
            names = s.exec(select(Agent.name)).all()
        close = [n for n in names if ref and n.startswith(ref)][:3] or difflib.get_close_matches(
            ref, names, n=3, cutoff=0.75
        )
        hint = f"; did you mean {' or '.join(sorted(close))}?" if close else ""
        raise NotFound(f"no agent {quoted(ref)}{hint}")

    def count_events(self, kinds: Iterable[str], since: datetime) -> int:
        """How many timeline entries of these kinds were written since `since`."""
        query = (
            select(sa.func.count())
            .select_from(AgentEvent)
            .where(col(AgentEvent.kind).in_(list(kinds)))
            .where(AgentEvent.at >= since)
        )
        with self.session() as s:
            return int(s.exec(query).one())

    def recent_events(self, limit: int = 20) -> list[tuple[AgentEvent, str]]:
        """The fleet's latest timeline entries with their agent's name, newest first."""
        query = (
            select(AgentEvent, Agent.name)
            .join(Agent, col(Agent.id) == col(AgentEvent.agent_id))
            .order_by(col(AgentEvent.id).desc())
            .limit(limit)
        )
        with self.session() as s:
            return [(event, name) for event, name in s.exec(query).all()]

    def by_token_hashes(self, digests: Sequence[str]) -> dict[str, Agent]:
        """Token hash → the agent holding that token, for those of `digests` that name one."""
        chunks = [digests[i : i + _IN_CHUNK] for i in range(0, len(digests), _IN_CHUNK)]
        with self.session() as s:
            found = [
                a for c in chunks for a in s.exec(select(Agent).where(col(Agent.token_hash).in_(c)))
            ]
        return {a.token_hash: a for a in found if a.token_hash}

    def events(self, agent_id: str, limit: int = 200) -> list[AgentEvent]:
        """An agent's timeline, oldest first (the most recent `limit` entries)."""
        query = (
            select(AgentEvent)
            .where(AgentEvent.agent_id == agent_id)
            .order_by(col(AgentEvent.id).desc())
            .limit(limit)
        )
        with self.session() as s:
            return list(reversed(s.exec(query).all()))

    # -- transitions --------------------------------------------------------

    def transition(
        self,
        agent_id: str,
        kind: EventKind,
        message: str,
        now: datetime,
        *,
        phase: Phase | None = None,
        expect: Iterable[Phase] | None = None,
        alert: tuple[AlertKind, str] | None = None,
        **fields: object,
    ) -> Agent | None:
        """Update an agent and append the event that explains it, atomically.

        With `expect`, nothing changes (and None is returned) unless the agent is in one
        of those phases: a guard against acting on a decision that went stale. `alert`
        (kind, text) is queued for delivery in the same transaction, so it is sent once.
        """
        with self.session() as s:
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
        self.changes.changed([agent_id], identity=phase is not None or "token_hash" in fields)
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
            EventKind.RETIRE_REQUESTED,
            f"retirement {why} ({how})",
            now,
            phase=Phase.RETIRING,
            expect=LIVE,
            flatten_deadline=flatten_deadline,
        )
        return changed or self.get(agent_id)

    # -- fleet-wide ---------------------------------------------------------

    def paused(self) -> bool:
        """Whether the kill switch holds. Every heartbeat asks: the answer is read from the
        store at most once per PAUSE_READ_SECONDS, and a change made through this store is
        seen at once."""
        if (known := self.paused_known()) is not None:
            return known
        with self.session() as s:
            state = s.get(FleetState, 1)
            paused = bool(state and state.paused)
        self._paused = (paused, time.monotonic())
        return paused

    def paused_known(self) -> bool | None:
        """The kill switch as read or set in the last PAUSE_READ_SECONDS, else None; never
        a store call (an event loop may ask)."""
        known, read_at = self._paused
        return known if time.monotonic() - read_at < PAUSE_READ_SECONDS else None

    def set_paused(self, paused: bool, now: datetime) -> bool:
        """Set the kill switch; returns whether it changed (and queues an alert if so)."""
        with self.session() as s:
            state = s.get(FleetState, 1, with_for_update=True) or FleetState(id=1)
            if state.paused == paused:
                self._paused = (paused, time.monotonic())
                return False
            state.paused, state.changed_at = paused, now
            s.add(state)
            text = (
                "fleet paused: agents submit no orders until `fleet resume`"
                if paused
                else "fleet resumed: agents trade again"
            )
            s.add(Alert(at=now, kind=AlertKind.PAUSED if paused else AlertKind.RESUMED, text=text))
            s.commit()
        self._paused = (paused, time.monotonic())
        return True

    def alerts(self, limit: int = 100) -> list[Alert]:
        """The most recent alerts, newest first."""
        query = select(Alert).order_by(col(Alert.id).desc()).limit(limit)
        with self.session() as s:
            return list(s.exec(query).all())

    def due_alerts(self, now: datetime) -> list[Alert]:
        """Alerts waiting for (another) delivery attempt, oldest first."""
        query = (
            select(Alert)
            .where(Alert.delivery == "pending")
            .where((Alert.next_attempt_at == None) | (Alert.next_attempt_at <= now))  # noqa: E711
            .order_by(col(Alert.id))
        )
        with self.session() as s:
            return list(s.exec(query).all())

    def record_delivery(self, alert_id: int, **fields: object) -> None:
        """Store the outcome of one delivery attempt."""
        with self.session() as s:
            alert = s.get(Alert, alert_id, with_for_update=True)
            if alert is None:
                return
            for name, value in fields.items():
                setattr(alert, name, value)
            s.add(alert)
            s.commit()

    def sound_alarms(
        self,
        agent_id: str,
        checked: Iterable[AlertKind],
        holding: dict[AlertKind, str],
        now: datetime,
    ) -> None:
        """Bring the agent's standing alarms among `checked` in line with `holding` (each
        with its alert text): an alarm that begins queues its alert, in the same
        transaction, so once per episode; one whose condition ended is forgotten."""
        with self.session() as s:
            agent = s.get(Agent, agent_id, with_for_update=True)
            if agent is None:
                return
            standing = set(filter(None, (agent.alarms or "").split(",")))
            begun = [kind for kind in holding if kind not in standing]
            ended = {kind for kind in checked if kind in standing and kind not in holding}
            if not begun and not ended:
                return
            for kind in begun:
                s.add(Alert(at=now, kind=kind, agent_id=agent_id, text=holding[kind]))
            agent.alarms = ",".join(sorted((standing - ended) | set(begun))) or None
            s.add(agent)
            s.commit()

    def bootstrapped(self, agent_id: str) -> dict[str, str | None]:
        """A new process of this agent has started: its cycles are counted afresh (a
        market clock set back by the operator must not lock the agent out). Returns what
        its last process remembered, for the new one to go on from: its `catalysts` and
        `open_trades`, as JSON (None when it reported none; {} for an unknown agent)."""
        kept = (col(Agent.catalysts), col(Agent.open_trades))
        with self.session() as s:
            update = sa.update(Agent).where(col(Agent.id) == agent_id).values(last_cycle=None)
            row = s.execute(update.returning(*kept)).one_or_none()
            s.commit()
            return dict(row._mapping) if row else {}

    def heartbeat(
        self,
        agent_id: str,
        cycle: int,
        last_error: str | None,
        now: datetime,
        sample_every: timedelta = timedelta(minutes=5),
        day: str | None = None,
        **state: object,
    ) -> Agent:
        """Record one heartbeat and the account state it reports (`beats.record_beats`); the
        agent as it is then. `day` is the market's trading day of the beat; by default,
        `now`'s, as on an unscaled market clock. A cycle behind the last one recorded since
        the agent's bootstrap is refused (Conflict)."""
        with self.session() as s:
            agent = s.get(Agent, agent_id, with_for_update=True)
            if agent is None:
                raise NotFound(f"no agent {agent_id!r}")
            if agent.last_cycle is not None and cycle < agent.last_cycle:
                raise Conflict(behind_message(cycle, agent.last_cycle))
            beat = Beat(agent_id, cycle, last_error, now, day or trading_day(now), state)
            _, lifecycle = record_beats(s, [beat], sample_every)
            s.commit()
        self.changes.beats_written([(agent_id, now)], lifecycle)
        return self.get(agent_id)

    def heartbeats(self, beats: Sequence[Beat], sample_every: timedelta) -> list[Recorded]:
        """Record a batch of heartbeats in one transaction (`beats.record_beats`)."""
        with self.session() as s:
            recorded, lifecycle = record_beats(s, beats, sample_every)
            s.commit()
        self.changes.beats_written(((b.agent_id, b.at) for b in beats), lifecycle)
        return recorded
