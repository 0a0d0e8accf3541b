"""The agents' equity over time, as their heartbeats sampled it: one agent's chart, the
fleet's curves, and where each agent stood at a moment (the report's baseline)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from orchestrator.state.store import Store
from orchestrator.state.tables import EquitySample, utc


class EquityBook:
    """Reads of the equity samples the store keeps (`Store.heartbeats` writes them)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def history(self, agent_id: str, limit: int = 500) -> list[tuple[datetime, float]]:
        """An agent's equity samples as (moment, equity), oldest first (the latest `limit`)."""
        query = (
            select(EquitySample)
            .where(EquitySample.agent_id == agent_id)
            .order_by(col(EquitySample.at).desc())
            .limit(limit)
        )
        with self.store.session() as s:
            return [(utc(e.at), e.equity) for e in reversed(s.exec(query).all())]

    def samples(
        self, since: datetime, until: datetime, slices: int
    ) -> list[tuple[str, datetime, float]]:
        """Each agent's last sample in each of `slices` equal parts of the samples' span
        in `since`..`until` (from the first sample after `since`), as (agent id, moment,
        equity), oldest first: a day of a big fleet's samples (1,000 agents write 1.4
        million) thinned to what a chart of `slices` points shows, and a young fleet's
        few minutes as finely as a chart of them needs."""
        postgres = self.store.engine.dialect.name == "postgresql"  # its CAST rounds
        with self.store.session() as s:
            first = s.exec(select(sa.func.min(EquitySample.at)).where(EquitySample.at > since))
            start = first.one()
            if start is None:
                return []
            start = utc(start)
            width = max((until - start).total_seconds() / slices, 1.0)
            offset = (sa.extract("epoch", EquitySample.at) - start.timestamp()) / width
            part = sa.func.floor(offset) if postgres else sa.cast(offset, sa.Integer)
            last = (
                select(sa.func.max(EquitySample.id).label("id"))
                .where(col(EquitySample.at) > since)
                .group_by(col(EquitySample.agent_id), part)
                .subquery()
            )
            query = (
                select(EquitySample.agent_id, EquitySample.at, EquitySample.equity)
                .join(last, last.c.id == col(EquitySample.id))
                .order_by(col(EquitySample.at), col(EquitySample.id))
            )
            return [(agent_id, utc(at), equity) for agent_id, at, equity in s.exec(query).all()]

    def at(self, moment: datetime, lookback: timedelta = timedelta(days=1)) -> dict[str, float]:
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
        with self.store.session() as s:
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
