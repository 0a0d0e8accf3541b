"""Decision records as agents hand them over: checked for shape and size, then kept.

A record is the agent's own account of a decision (`agent_runtime.decisions`), so it is
untrusted: every field that the orchestrator reads is typed and bounded here, the rest of
its inputs is kept as given within a size limit, and nothing of it is ever drawn as
markup. A batch resent after a lost answer adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from orchestrator.gateway.agents import MAX_COUNT
from orchestrator.state.decisions import DecisionBook
from orchestrator.state.errors import DatabaseError
from orchestrator.state.health import StoreHealth
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent

MAX_RECORD_BYTES = 64_000
MAX_BATCH = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordedOrder(_Strict):
    client_order_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9._:-]*$")
    symbol: str = Field(min_length=1, max_length=16)
    side: Literal["buy", "sell"]
    qty: int = Field(ge=0, le=MAX_COUNT)
    rationale: str = Field(default="", max_length=500)


class RecordedInputs(BaseModel):
    """What the decision saw; only `social` is read here, the rest is kept as given."""

    model_config = ConfigDict(extra="allow")

    social: list[dict[str, Any]] = Field(default_factory=list, max_length=500)


class RecordIn(_Strict):
    """One decision record."""

    v: int = Field(ge=1, le=1000)
    cycle: int = Field(ge=0, le=MAX_COUNT)
    at: AwareDatetime
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


class DecisionBatch(_Strict):
    """`POST /v1/agent/decisions`."""

    records: list[RecordIn] = Field(min_length=1, max_length=MAX_BATCH)


class DecisionIntake:
    """Keeps agents' decision records."""

    def __init__(self, store: Store, health: StoreHealth, now: Callable[[], datetime]) -> None:
        self.book = DecisionBook(store)
        self.health = health
        self.now = now

    def keep(self, agent: Agent, batch: DecisionBatch) -> dict:
        """Keep the batch's new records; a store that cannot take them is reported to
        `health` and the error raised on, so the agent keeps them for later."""
        records = [r.model_dump(mode="json") for r in batch.records]
        try:
            kept = self.book.keep(agent.id, records, self.now())
        except DatabaseError as exc:
            self.health.failed("decision records", exc)
            raise
        self.health.worked("decision records")
        return {"kept": kept, "received": len(records)}
