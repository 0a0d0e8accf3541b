"""Gateway endpoints agents call with their own token (DESIGN §4.2).

A token reads only its own agent; a revoked or unknown token gets 401. The replies carry
what the agent needs to run and nothing of any other agent or of the orchestrator's keys.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from orchestrator import keys
from orchestrator.api.errors import ApiError, bearer, fleet_of
from orchestrator.phases import Phase
from orchestrator.store import Agent

router = APIRouter(prefix="/v1/agent", tags=["gateway"])


async def current_agent(request: Request) -> Agent:
    """The agent whose token authorises this request."""
    token = bearer(request)
    agent = None
    if token:
        agent = await run_in_threadpool(
            fleet_of(request).store.by_token_hash, keys.token_hash(token)
        )
    if agent is None:
        raise ApiError(401, "unauthorized", "unknown or revoked agent token")
    return agent


AgentDep = Annotated[Agent, Depends(current_agent)]


class Heartbeat(BaseModel):
    """What an agent reports every cycle."""

    cycle: int = Field(ge=0)
    phase: str = Field(default="running", max_length=32)
    equity: float | None = Field(default=None, allow_inf_nan=False)
    cash: float | None = Field(default=None, allow_inf_nan=False)
    positions: list[dict] = Field(default_factory=list, max_length=200)
    orders_submitted: int = Field(default=0, ge=0)
    orders_filled: int = Field(default=0, ge=0)
    orders_today: int | None = Field(default=None, ge=0)
    last_error: str | None = Field(default=None, max_length=2000)


class HeartbeatReply(BaseModel):
    """What the orchestrator tells the agent back."""

    paused: bool
    retire: bool


@router.get("/bootstrap")
def bootstrap(request: Request, agent: AgentDep) -> dict:
    """The agent's identity and schedule; everything it needs beyond its three variables."""
    fleet = fleet_of(request)
    settings = fleet.settings
    cycle = settings.agent_cycle_seconds
    platform = None
    if fleet.accounts is not None and agent.credentials:
        platform = {"base_url": fleet.accounts.base_url, **fleet.accounts.open(agent.credentials)}
    return {
        "agent_id": agent.id,
        "name": agent.name,
        "strategy": agent.strategy,
        "personality": json.loads(agent.personality) if agent.personality else None,
        "platform": platform,
        "schedule": {"cycle_seconds": cycle, "jitter_seconds": round(cycle * 0.1, 3)},
        "risk_limits": {
            "max_position_fraction": 0.15,
            "max_positions": 10,
            "min_equity": 1000.0,
            "max_orders_per_day": settings.risk_max_orders_per_day,
        },
        "clock": {
            "time_scale": settings.market_time_scale,
            "anchor": settings.market_anchor.isoformat(),
            "hours": settings.market_hours,
        },
        "paused": fleet.store.paused(),
    }


@router.post("/heartbeat")
def heartbeat(request: Request, agent: AgentDep, beat: Heartbeat) -> HeartbeatReply:
    """Record a heartbeat and answer with the fleet's orders for this agent."""
    fleet = fleet_of(request)
    updated = fleet.store.heartbeat(
        agent.id,
        beat.cycle,
        beat.last_error,
        fleet.now(),
        timedelta(seconds=fleet.settings.equity_sample_seconds),
        equity=beat.equity,
        cash=beat.cash,
        open_positions=len(beat.positions),
        orders_submitted=beat.orders_submitted,
        orders_filled=beat.orders_filled,
        orders_today=beat.orders_today,
    )
    return HeartbeatReply(paused=fleet.store.paused(), retire=updated.phase == Phase.RETIRING)
