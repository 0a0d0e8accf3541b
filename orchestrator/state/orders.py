"""The fleet's own order book: every order an agent placed, as the platform answered it
through the gateway's relay, and each agent's open positions as last seen there.

It is the one source of "orders today" for every surface, and it outlives an agent's
process (whose counters restart) and its platform account (disabled at retirement). A
replayed submission, or the same answer seen twice, updates the order's row instead of
adding one: `(agent_id, client_order_id)` is unique.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, func, select

from orchestrator.state.store import Store
from orchestrator.state.tables import Agent, OrderRecord, utc

MAX_RATIONALE = 500  # characters of an agent's rationale kept


@dataclass(frozen=True)
class PlacedOrder:
    """One order as the platform answered it."""

    client_order_id: str
    order_id: str | None
    symbol: str
    side: str
    status: str
    qty: float
    price: float | None
    reject_reason: str | None
    placed_at: datetime  # market time
    market_day: str  # YYYY-MM-DD on the exchange's calendar


class OrderBook:
    """Writes and reads of the `orders` table and the agents' positions."""

    def __init__(self, store: Store) -> None:
        self.session = store.session
        self._outcomes: Counter[tuple[str, str]] = Counter()  # since this process began
        self._lock = threading.Lock()  # orders are recorded on the server's worker threads

    def record(
        self, agent_id: str, order: PlacedOrder, rationale: str | None, now: datetime
    ) -> None:
        """Keep one order, or bring its row up to date."""
        fields = {
            "order_id": order.order_id,
            "symbol": order.symbol,
            "side": order.side,
            "status": order.status,
            "qty": order.qty,
            "price": order.price,
            "reject_reason": order.reject_reason,
            "placed_at": order.placed_at,
            "market_day": order.market_day,
            "recorded_at": now,
        }
        with self.session() as s:
            query = select(OrderRecord).where(
                OrderRecord.agent_id == agent_id,
                OrderRecord.client_order_id == order.client_order_id,
            )
            row = s.exec(query.with_for_update()).first()
            reached = row is None or row.status != order.status  # a status new to the order
            strategy = (
                s.exec(select(Agent.strategy).where(Agent.id == agent_id)).first()
                if reached
                else None
            )
            if row is None:
                row = OrderRecord(
                    agent_id=agent_id,
                    client_order_id=order.client_order_id,
                    rationale=(rationale or None) and rationale[:MAX_RATIONALE],
                    **fields,
                )
            else:
                for name, value in fields.items():
                    setattr(row, name, value)
            s.add(row)
            try:
                s.commit()
            except sa.exc.IntegrityError:  # the same order recorded at the same moment
                s.rollback()
                self.record(agent_id, order, rationale, now)
                return
        if strategy is not None:
            with self._lock:
                self._outcomes[(strategy, order.status)] += 1

    def outcomes(self) -> Counter[tuple[str, str]]:
        """The statuses orders reached since this process began, by the agent's strategy
        and the status: each order counts once for each status the platform answered it
        with (`new`, then `filled`), never twice for the same one."""
        with self._lock:
            return Counter(self._outcomes)

    def record_positions(self, listed: Mapping[str, tuple[list[dict], datetime]]) -> None:
        """Keep each agent's open positions as the platform last listed them (agent id →
        positions, listed at), all in one transaction; an agent gone meanwhile is skipped.
        Rows are updated in id order, as a batch of heartbeats locks them: in any other
        order the two deadlock on PostgreSQL (the soak saw it)."""
        with self.session() as s:
            known = set(s.exec(select(Agent.id).where(col(Agent.id).in_(list(listed)))).all())
            rows = [
                {"id": agent_id, "positions": json.dumps(positions), "positions_at": at}
                for agent_id, (positions, at) in sorted(listed.items())
                if agent_id in known
            ]
            if rows:
                s.execute(sa.update(Agent), rows)
            s.commit()

    def orders_on(self, market_day: str) -> Counter[str]:
        """How many orders each agent placed on `market_day`."""
        query = (
            select(OrderRecord.agent_id, func.count())
            .where(OrderRecord.market_day == market_day)
            .group_by(OrderRecord.agent_id)
        )
        with self.session() as s:
            return Counter(dict(s.exec(query).all()))

    def client_order_ids(self, agent_id: str, market_day: str) -> set[str]:
        """The client order ids of the agent's orders placed on `market_day`."""
        query = select(OrderRecord.client_order_id).where(
            OrderRecord.agent_id == agent_id, OrderRecord.market_day == market_day
        )
        with self.session() as s:
            return set(s.exec(query).all())

    def latest_statuses(self, agent_id: str, limit: int) -> list[str]:
        """The statuses of the agent's latest `limit` orders, newest first."""
        query = (
            select(OrderRecord.status)
            .where(OrderRecord.agent_id == agent_id)
            .order_by(col(OrderRecord.placed_at).desc(), col(OrderRecord.id).desc())
            .limit(limit)
        )
        with self.session() as s:
            return list(s.exec(query).all())

    def recent(self, agent_id: str, limit: int = 50) -> list[OrderRecord]:
        """The agent's latest orders, newest first."""
        query = (
            select(OrderRecord)
            .where(OrderRecord.agent_id == agent_id)
            .order_by(col(OrderRecord.placed_at).desc(), col(OrderRecord.id).desc())
            .limit(limit)
        )
        with self.session() as s:
            rows = list(s.exec(query).all())
        for row in rows:
            row.placed_at = utc(row.placed_at)
        return rows
