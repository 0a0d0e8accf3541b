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

from sqlmodel import Session, col, select

from orchestrator.lifecycle import EventKind, Phase
from orchestrator.state.tables import Agent, AgentEvent, EquitySample, utc


@dataclass(frozen=True)
class Beat:
    """One heartbeat as the store records it: `state` holds the account's figures
    (equity, cash, open_positions, orders_submitted, orders_filled, orders_today)."""

    agent_id: str
    cycle: int
    last_error: str | None
    at: datetime
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


def apply_beat(s: Session, agent: Agent, beat: Beat, sample_every: timedelta) -> None:
    """Write `beat` onto `agent` (a row of session `s`, locked for update)."""
    now = beat.at
    agent.last_heartbeat_at = now
    agent.healthy_since = agent.healthy_since or now
    agent.last_cycle = beat.cycle
    agent.last_error = beat.last_error
    before = agent.equity
    for name, value in beat.state.items():
        setattr(agent, name, value)
    if agent.equity is not None and agent.equity_day != (day := now.date().isoformat()):
        agent.equity_day = day
        agent.day_start_equity = before if before is not None else agent.equity
    if agent.equity is not None:
        agent.peak_equity = max(agent.peak_equity or agent.equity, agent.equity)
        if agent.starting_equity is None:
            agent.starting_equity = agent.equity
        last = utc(agent.sampled_at)
        if last is None or now - last >= sample_every:
            s.add(EquitySample(agent_id=agent.id, at=now, equity=agent.equity))
            agent.sampled_at = now
    # Running means a recorded workload that beats: not before the start is recorded, and
    # not on a beat received before the last failure (it waited for its batch), which came
    # from the workload that failed.
    failed = utc(agent.failed_at)
    current = agent.container_id is not None and (failed is None or now > failed)
    if agent.phase == Phase.STARTING and current:
        agent.phase = Phase.RUNNING
        agent.updated_at = now
        message = "first heartbeat: the agent is running"
        s.add(AgentEvent(agent_id=agent.id, at=now, kind=EventKind.RUNNING, message=message))
    s.add(agent)


def record_beats(s: Session, beats: Sequence[Beat], sample_every: timedelta) -> list[Recorded]:
    """Record `beats` in order (their cycles checked by the caller) in session `s`, and
    return the agent's figures after each; a beat of an agent no longer in the store is
    left out. Rows are locked in id order, so two batches never wait on each other in a
    circle."""
    ids = sorted({b.agent_id for b in beats})
    query = select(Agent).where(col(Agent.id).in_(ids)).order_by(col(Agent.id)).with_for_update()
    rows = {agent.id: agent for agent in s.exec(query).all()}
    recorded = []
    for beat in beats:
        agent = rows.get(beat.agent_id)
        if agent is not None:
            apply_beat(s, agent, beat, sample_every)
            recorded.append(
                Recorded(agent.id, agent.name, agent.equity, agent.peak_equity, agent.alarms)
            )
    return recorded
