"""Metered usage kept in the store: upstream calls per data provider and LLM spend per agent.

Both are counted per UTC day so quotas and budgets reset at midnight and survive a daemon
restart. Increments are row-locked upserts: concurrent requests never lose a count.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

from orchestrator.state.store import Store
from orchestrator.state.tables import LlmUsage, ProviderUsage


class UsageLedger:
    """Reads and increments of the usage tables."""

    def __init__(self, store: Store) -> None:
        self.session = store.session

    def _increment(self, model: type[SQLModel], key: tuple[str, str], **add: float) -> SQLModel:
        with self.session() as s:
            row = s.get(model, key, with_for_update=True)
            if row is None:
                names = model.__table__.primary_key.columns.keys()
                row = model(**dict(zip(names, key, strict=True)))
            for name, amount in add.items():
                setattr(row, name, getattr(row, name) + amount)
            s.add(row)
            try:
                s.commit()
            except sa.exc.IntegrityError:  # the day's first increment raced another
                s.rollback()
                return self._increment(model, key, **add)
            return row

    def provider_calls(self, provider: str, day: str) -> int:
        """Upstream calls already made to `provider` on `day` (YYYY-MM-DD)."""
        with self.session() as s:
            row = s.get(ProviderUsage, (provider, day))
        return row.calls if row else 0

    def count_provider_call(self, provider: str, day: str) -> int:
        """Count one upstream call; returns the day's total so far."""
        return self._increment(ProviderUsage, (provider, day), calls=1).calls

    def llm_spent(self, agent_id: str, day: str) -> float:
        """Dollars `agent_id` spent on the LLM on `day`."""
        with self.session() as s:
            row = s.get(LlmUsage, (agent_id, day))
        return row.cost_usd if row else 0.0

    def llm_day(self, day: str) -> tuple[int, int, float]:
        """The whole fleet's LLM input tokens, output tokens and dollars on `day`."""
        query = sa.select(
            sa.func.coalesce(sa.func.sum(LlmUsage.input_tokens), 0),
            sa.func.coalesce(sa.func.sum(LlmUsage.output_tokens), 0),
            sa.func.coalesce(sa.func.sum(LlmUsage.cost_usd), 0.0),
        ).where(LlmUsage.day == day)
        with self.session() as s:
            tokens_in, tokens_out, cost = s.execute(query).one()
        return int(tokens_in), int(tokens_out), float(cost)

    def charge_llm(
        self, agent_id: str, day: str, input_tokens: int, output_tokens: int, cost_usd: float
    ) -> None:
        """Add one LLM call's tokens and cost to the agent's day."""
        self._increment(
            LlmUsage,
            (agent_id, day),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
        )
