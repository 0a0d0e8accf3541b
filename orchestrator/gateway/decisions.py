"""Decision records as agents hand them over: checked for shape and size, then kept.

A record is the agent's own account of a decision (`agent_runtime.decisions`), so it is
untrusted: every field that the orchestrator reads is typed and bounded here, the rest of
its inputs is kept as given within a size limit, and nothing of it is ever drawn as
markup. A batch resent after a lost answer adds nothing, and costs nothing of the budget.

Records are the one thing an agent can make the store grow by, so each agent has a budget
per trading day, by the market's clock (`FLEET_DECISION_BUDGET_BYTES`). An honest agent
records its orders (the rails allow 20 a day) and one in ten other decisions, about 3 KB
each; a hostile one could otherwise write 64 KB a second, its whole request rate, for as
long as retention keeps it. The budget is counted in memory: a daemon's restart starts it
again, so one agent may write at most one more budget on that day per restart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from feeds.calendar import trading_day
from orchestrator.gateway.agents import MAX_COUNT
from orchestrator.state.decisions import DecisionBook
from orchestrator.state.errors import DatabaseError
from orchestrator.state.health import StoreHealth
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent
from orchestrator.untrusted import Body

MAX_RECORD_BYTES = 64_000
MAX_BATCH = 100


class RecordedOrder(Body):
    client_order_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9._:-]*$")
    symbol: str = Field(min_length=1, max_length=16)
    side: Literal["buy", "sell"]
    qty: int = Field(ge=0, le=MAX_COUNT)
    rationale: str = Field(default="", max_length=500)


class RecordedInputs(BaseModel):
    """What the decision saw; only `social` is read here, the rest is kept as given."""

    model_config = ConfigDict(extra="allow")

    social: list[dict[str, Any]] = Field(default_factory=list, max_length=500)


class RecordIn(Body):
    """One decision record."""

    v: int = Field(ge=1, le=1000)
    cycle: int = Field(ge=0, le=MAX_COUNT)
    at: AwareDatetime = Field(strict=False)  # sent as an ISO 8601 string
    strategy: str = Field(min_length=1, max_length=40)
    strategy_version: int = Field(ge=0, le=1_000_000)
    inputs: RecordedInputs
    proposals: list[dict[str, Any]] = Field(max_length=200)
    dropped: list[dict[str, Any]] = Field(max_length=200)
    clamped: list[dict[str, Any]] = Field(max_length=200)
    orders: list[RecordedOrder] = Field(max_length=50)
    error: str | None = Field(default=None, max_length=2000)

    @field_validator("inputs")
    @classmethod
    def _bounded(cls, inputs: RecordedInputs) -> RecordedInputs:
        if len(json.dumps(inputs.model_dump(), default=str)) > MAX_RECORD_BYTES:
            raise ValueError(f"larger than {MAX_RECORD_BYTES} bytes")
        return inputs


class DecisionBatch(Body):
    """`POST /v1/agent/decisions`."""

    records: list[RecordIn] = Field(min_length=1, max_length=MAX_BATCH)


class OverBudget(Exception):
    """An agent's batch would take its records past the day's budget: nothing is kept."""


class DecisionIntake:
    """Keeps agents' decision records, each agent within its daily budget."""

    def __init__(
        self,
        store: Store,
        health: StoreHealth,
        now: Callable[[], datetime],
        market_now: Callable[[], datetime],
        budget: int,
    ) -> None:
        self.book = DecisionBook(store)
        self.health = health
        self.now = now
        self.market_now = market_now
        self.budget = budget
        self._spent: dict[str, tuple[str, int]] = {}  # agent id → (trading day, bytes)
        self._lock = threading.Lock()  # batches are kept on the server's worker threads

    def keep(self, agent: Agent, batch: DecisionBatch) -> dict:
        """Keep the batch's new records; a store that cannot take them is reported to
        `health` and the error raised on, so the agent keeps them for later. A batch past
        the agent's budget for the day raises `OverBudget`."""
        records = [r.model_dump(mode="json") for r in batch.records]
        sizes = {r["cycle"]: len(json.dumps(r, separators=(",", ":"))) for r in records}
        size = sum(sizes.values())
        day = trading_day(self.market_now())
        with self._lock:
            seen, spent = self._spent.get(agent.id, (day, 0))
            spent = spent if seen == day else 0
            if spent + size > self.budget:
                raise OverBudget(
                    f"decision records of trading day {day} would pass this agent's budget "
                    f"of {self.budget:,} bytes ({spent:,} kept); this batch is dropped"
                )
            self._spent[agent.id] = (day, spent + size)  # held, so a parallel batch counts it
        try:
            kept = self.book.keep(agent.id, records, self.now())
        except DatabaseError as exc:
            self._refund(agent.id, day, size)
            self.health.failed("decision records", exc)
            raise
        self.health.worked("decision records")
        # a batch sent again (its answer lost) is charged only for what was new in it
        self._refund(agent.id, day, sum(n for cycle, n in sizes.items() if cycle not in kept))
        return {"kept": len(kept), "received": len(records)}

    def _refund(self, agent_id: str, day: str, size: int) -> None:
        with self._lock:
            seen, spent = self._spent[agent_id]
            if seen == day:  # else a new day began meanwhile, and nothing is held
                self._spent[agent_id] = (day, spent - size)
