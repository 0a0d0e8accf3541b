"""Heartbeats in the store: one agent's, or a whole batch in one transaction.

The gateway answers heartbeats from memory and hands them over in batches (DESIGN §6:
the store is written in batches, not once per heartbeat). A beat sets the agent's last
heartbeat, cycle, error and the account state it reports; the first one moves a starting
agent whose workload is recorded to running, with the event that says so (unless it was
received before the agent's last failure, from the workload that failed). Equity is
sampled at most once per `sample_every`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from orchestrator.lifecycle import EventKind, Phase
from orchestrator.state.tables import Agent, AgentEvent, EquitySample, utc


@dataclass(frozen=True)
class Beat:
    """One heartbeat as the store records it: `day` is the market's trading day when it
    was taken (`feeds.calendar.trading_day`), the day its equity counts towards; `state`
    holds the account's figures (equity, cash, open_positions, orders_submitted,
    orders_filled, orders_today) and, when the agent reports them, its catalysts and
    open_trades (JSON)."""

    agent_id: str
    cycle: int
    last_error: str | None
    at: datetime
    day: str
    state: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """An agent's figures right after one beat of a batch was written."""

    agent_id: str
    name: str
    equity: float | None
    peak_equity: float | None
    alarms: str | None


def behind_message(cycle: int, last: int) -> str:
    """Why a beat whose cycle went back is refused."""
    return (
        f"cycle {cycle} is behind the last recorded cycle {last}: an agent's cycles never go back"
    )


_TABLES = (Agent.__table__, EquitySample.__table__, AgentEvent.__table__)
# An agent's columns a beat reads, and those it writes back
_READ = ("id", "name", "container_id", "failed_at", "alarms")
_STATE = (
    "equity",
    "cash",
    "open_positions",
    "orders_submitted",
    "orders_filled",
    "orders_today",
    "catalysts",
    "open_trades",
)
_WRITTEN = (
    "phase",
    "updated_at",
    "last_heartbeat_at",
    "healthy_since",
    "last_cycle",
    "last_error",
    *_STATE,
    "equity_day",
    "day_start_equity",
    "peak_equity",
    "starting_equity",
    "sampled_at",
)


def apply_beat(
    agent: dict[str, Any], beat: Beat, sample_every: timedelta
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Write `beat` onto `agent` (its columns, as read); the equity sample and the timeline
    event the beat adds, as rows, if it adds them."""
    unknown = beat.state.keys() - _STATE
    if unknown:
        raise ValueError(f"a heartbeat has no field {', '.join(sorted(unknown))}")
    now = beat.at
    before = agent["equity"]
    agent.update(beat.state, last_heartbeat_at=now, last_cycle=beat.cycle)
    agent.update(healthy_since=agent["healthy_since"] or now, last_error=beat.last_error)
    equity = agent["equity"]
    sample = event = None
    if equity is not None:
        if agent["equity_day"] != beat.day:
            agent.update(equity_day=beat.day, day_start_equity=equity if before is None else before)
        agent["peak_equity"] = max(agent["peak_equity"] or equity, equity)
        if agent["starting_equity"] is None:
            agent["starting_equity"] = equity
        last = utc(agent["sampled_at"])
        if last is None or now - last >= sample_every:
            sample = {"agent_id": agent["id"], "at": now, "equity": equity}
            agent["sampled_at"] = now
    # Running means a recorded workload that beats: not before the start is recorded, and
    # not on a beat received before the last failure (it waited for its batch), which came
    # from the workload that failed.
    failed = utc(agent["failed_at"])
    current = agent["container_id"] is not None and (failed is None or now > failed)
    if agent["phase"] == Phase.STARTING and current:
        agent.update(phase=Phase.RUNNING, updated_at=now)
        message = "first heartbeat: the agent is running"
        event = {"agent_id": agent["id"], "at": now, "kind": EventKind.RUNNING, "message": message}
    return sample, event


def record_beats(
    s: Session, beats: Sequence[Beat], sample_every: timedelta
) -> tuple[list[Recorded], set[str]]:
    """Record `beats` in order (their cycles checked by the caller) in session `s`. Returns
    the agent's figures after each (a beat of an agent no longer in the store is left out),
    and the agents whose lifecycle a beat moved: made running, or healthy again. Rows are
    locked in id order, so two batches never wait on each other in a circle. Plain rows,
    and a statement for each set of columns changed and each table: the ORM's loading and
    unit of work were most of a batch's cost."""
    agents, samples, events = _TABLES
    ids = sorted({b.agent_id for b in beats})
    query = (
        sa.select(*(agents.c[name] for name in (*_READ, *_WRITTEN)))
        .where(agents.c.id.in_(ids))
        .order_by(agents.c.id)
        .with_for_update()
    )
    read = {row.id: row._mapping for row in s.execute(query)}
    rows = {agent_id: dict(row) for agent_id, row in read.items()}
    new_samples: list[dict[str, Any]] = []
    new_events: list[dict[str, Any]] = []
    recorded = []
    for beat in beats:
        agent = rows.get(beat.agent_id)
        if agent is None:
            continue
        sample, event = apply_beat(agent, beat, sample_every)
        new_samples += [sample] if sample else []
        new_events += [event] if event else []
        recorded.append(
            Recorded(
                beat.agent_id, agent["name"], agent["equity"], agent["peak_equity"], agent["alarms"]
            )
        )
    # Only the columns a beat changed are written, and only while the phase is still the
    # one read: on SQLite the read and the write are not one transaction, and a phase set
    # meanwhile (a retirement, a restart) must not be undone. That agent's beat is left
    # unwritten, and its next one is written.
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for agent_id, agent in rows.items():
        was = read[agent_id]
        changed = tuple(name for name in _WRITTEN if agent[name] != was[name])
        if changed:
            values = {f"new_{name}": agent[name] for name in changed}
            changes.setdefault(changed, []).append(
                {"agent": agent_id, "was": was["phase"], **values}
            )
    promoted, lifecycle = set(), set()
    for changed, rows_of in changes.items():
        if "healthy_since" in changed:
            lifecycle.update(row["agent"] for row in rows_of)
        update = agents.update().where(
            agents.c.id == sa.bindparam("agent"), agents.c.phase == sa.bindparam("was")
        )
        update = update.values({name: sa.bindparam(f"new_{name}") for name in changed})
        if "phase" not in changed:
            s.execute(update, rows_of)
            continue
        for row in rows_of:  # a first beat: rare, and its event only if it took
            if s.execute(update, row).rowcount == 1:
                promoted.add(row["agent"])
    lifecycle |= promoted
    new_events = [e for e in new_events if e["agent_id"] in promoted]
    for table, new in ((samples, new_samples), (events, new_events)):
        if new:
            s.execute(table.insert(), new)
    return recorded, lifecycle
