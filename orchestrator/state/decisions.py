"""Agents' decision records, and which decision sent which order.

A batch is kept whole or not at all; a record already kept (same agent and cycle) is
skipped, so an agent that resends a batch after a lost answer adds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from orchestrator.state.store import Store
from orchestrator.state.tables import DecisionOrder, DecisionRecord, OrderRecord, utc


@dataclass(frozen=True)
class Decision:
    """A kept decision record."""

    agent_id: str
    cycle: int
    decided_at: datetime
    strategy: str
    record: dict


def _decision(row: DecisionRecord) -> Decision:
    return Decision(
        row.agent_id, row.cycle, utc(row.decided_at), row.strategy, json.loads(row.record)
    )


class DecisionBook:
    """Writes and reads of the `decisions` and `decision_orders` tables."""

    def __init__(self, store: Store) -> None:
        self.session = store.session

    def keep(self, agent_id: str, records: list[dict], now: datetime) -> set[int]:
        """Keep the records not kept yet (each has `cycle`, `at`, `strategy`, `inputs`
        and `orders`, already checked); returns the cycles of those that were new."""
        with self.session() as s:
            cycles = [r["cycle"] for r in records]
            known = set(
                s.exec(
                    select(DecisionRecord.cycle).where(
                        DecisionRecord.agent_id == agent_id, col(DecisionRecord.cycle).in_(cycles)
                    )
                ).all()
            )
            fresh = {r["cycle"]: r for r in records if r["cycle"] not in known}
            for cycle, data in fresh.items():
                row = DecisionRecord(
                    agent_id=agent_id,
                    cycle=cycle,
                    decided_at=datetime.fromisoformat(data["at"]),
                    strategy=data["strategy"],
                    orders=len(data["orders"]),
                    social=len(data["inputs"].get("social", ())),
                    record=json.dumps(data, separators=(",", ":")),
                    recorded_at=now,
                )
                s.add(row)
                s.flush()
                for order in data["orders"]:
                    if order["client_order_id"]:
                        s.merge(
                            DecisionOrder(
                                agent_id=agent_id,
                                client_order_id=order["client_order_id"],
                                decision_id=row.id,
                            )
                        )
            try:
                s.commit()
            except sa.exc.IntegrityError:  # the same batch kept at the same moment
                s.rollback()
                return self.keep(agent_id, records, now)
            return set(fresh)

    def latest(self, agent_id: str, limit: int) -> list[Decision]:
        """The agent's latest decisions, newest first."""
        query = (
            select(DecisionRecord)
            .where(DecisionRecord.agent_id == agent_id)
            .order_by(col(DecisionRecord.cycle).desc())
            .limit(limit)
        )
        with self.session() as s:
            return [_decision(row) for row in s.exec(query).all()]

    def for_order(self, order: str) -> tuple[OrderRecord, Decision | None] | None:
        """The order with this platform id or client order id, and the decision that sent
        it (None if its record was not kept); None if no such order."""
        if "\x00" in order:  # in no order id, and PostgreSQL refuses it in a query
            return None
        with self.session() as s:
            found = s.exec(
                select(OrderRecord)
                .where((OrderRecord.order_id == order) | (OrderRecord.client_order_id == order))
                .order_by(col(OrderRecord.id).desc())
            ).first()
            if found is None:
                return None
            row = s.exec(
                select(DecisionRecord)
                .join(DecisionOrder, col(DecisionOrder.decision_id) == col(DecisionRecord.id))
                .where(
                    DecisionOrder.agent_id == found.agent_id,
                    DecisionOrder.client_order_id == found.client_order_id,
                )
            ).first()
            found.placed_at = utc(found.placed_at)
            return found, _decision(row) if row else None

    def reasons(self, agent_id: str, client_order_ids: list[str]) -> dict[str, dict]:
        """For each of the agent's orders whose decision was kept, that decision's record."""
        query = (
            select(DecisionOrder.client_order_id, DecisionRecord.record)
            .join(DecisionRecord, col(DecisionOrder.decision_id) == col(DecisionRecord.id))
            .where(
                DecisionOrder.agent_id == agent_id,
                col(DecisionOrder.client_order_id).in_(client_order_ids),
            )
        )
        with self.session() as s:
            return {cid: json.loads(record) for cid, record in s.exec(query).all()}
