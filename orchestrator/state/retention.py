"""Retention: how much of its own history the store keeps.

Timelines, equity samples, decision records and delivered alerts grow with time, whether
or not the fleet trades. Past the retention window (FLEET_RETENTION_DAYS) they are
compacted: an agent's equity samples thin out to the last one of each day, so its chart
keeps its shape; timeline entries, decision records (with their links to orders) and
delivered alerts go (an agent's restart count stays on its row). Orders are kept: they
grow with trading, and reports and P&L read them. Alerts still waiting for delivery are
never removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, delete, select

from orchestrator.state.store import Store
from orchestrator.state.tables import (
    AgentEvent,
    Alert,
    DecisionOrder,
    DecisionRecord,
    EquitySample,
    OrderRecord,
)

# The tables that grow, and the column that says when each row came
_GROWING = (
    (AgentEvent, AgentEvent.at),
    (EquitySample, EquitySample.at),
    (OrderRecord, OrderRecord.recorded_at),
    (Alert, Alert.at),
    (DecisionRecord, DecisionRecord.recorded_at),
)


@dataclass(frozen=True)
class Compacted:
    """How many rows one pass removed."""

    events: int
    samples: int
    alerts: int
    decisions: int = 0

    def __bool__(self) -> bool:
        return bool(self.events or self.samples or self.alerts or self.decisions)


def compact(store: Store, before: datetime) -> Compacted:
    """Compact everything older than `before`, in one transaction."""
    with store.session() as s:
        events = s.exec(delete(AgentEvent).where(col(AgentEvent.at) < before))
        last_of_day = (
            select(sa.func.max(EquitySample.id))
            .where(col(EquitySample.at) < before)
            .group_by(EquitySample.agent_id, sa.func.date(EquitySample.at))
        )
        samples = s.exec(
            delete(EquitySample).where(
                col(EquitySample.at) < before, col(EquitySample.id).not_in(last_of_day)
            )
        )
        alerts = s.exec(
            delete(Alert).where(col(Alert.at) < before, col(Alert.delivery) != "pending")
        )
        old = select(DecisionRecord.id).where(col(DecisionRecord.recorded_at) < before)
        s.exec(delete(DecisionOrder).where(col(DecisionOrder.decision_id).in_(old)))
        decisions = s.exec(delete(DecisionRecord).where(col(DecisionRecord.recorded_at) < before))
        s.commit()
        return Compacted(events.rowcount, samples.rowcount, alerts.rowcount, decisions.rowcount)


@dataclass(frozen=True)
class Footprint:
    """How big the store is and how fast it grows."""

    size_bytes: int
    rows: int  # in the tables that grow
    rows_last_day: int

    @property
    def growth_per_day(self) -> float:
        """Bytes a day at the last day's pace (rows added times the mean row's size)."""
        return self.size_bytes * self.rows_last_day / self.rows if self.rows else 0.0


def footprint(store: Store, now: datetime) -> Footprint:
    """The store's size on disk and its rows, all and of the last 24 hours."""
    day_ago = now - timedelta(days=1)
    with store.session() as s:
        if store.engine.dialect.name == "postgresql":
            size = s.exec(sa.text("SELECT pg_database_size(current_database())")).scalar()
        else:
            pages = s.exec(sa.text("PRAGMA page_count")).scalar()
            size = pages * s.exec(sa.text("PRAGMA page_size")).scalar()
        rows = recent = 0
        for table, when in _GROWING:
            rows += s.exec(select(sa.func.count()).select_from(table)).one()
            recent += s.exec(select(sa.func.count()).where(col(when) >= day_ago)).one()
    return Footprint(int(size or 0), rows, recent)
