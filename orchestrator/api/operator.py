"""Operator endpoints for the CLI and dashboards (DESIGN §4.3), behind the operator token."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field

from orchestrator import keys
from orchestrator.api.errors import ApiError, bearer, fleet_of
from orchestrator.phases import Phase
from orchestrator.runtime import RuntimeFailure
from orchestrator.sampling import Sampling
from orchestrator.views import agent_view, event_view, fleet_view, iso
from personalities import Strategy
from platform_client import PlatformError

if TYPE_CHECKING:
    from orchestrator.daemon import Fleet


def require_operator(request: Request) -> None:
    """Reject a request that lacks the operator token."""
    if not keys.tokens_equal(bearer(request), fleet_of(request).operator_token):
        raise ApiError(401, "unauthorized", "wrong or missing operator token")


router = APIRouter(tags=["operator"])
operator = APIRouter(prefix="/v1", dependencies=[Depends(require_operator)])


class SpawnRequest(Sampling):
    """`POST /v1/agents`: how many agents and the key that makes a retry safe."""

    count: int = Field(ge=1, le=1000)
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64)


class ScaleRequest(Sampling):
    """`PUT /v1/fleet/desired`: the fleet size wanted, and which agents go first."""

    size: int = Field(ge=0, le=1000)
    retire: Literal["newest", "oldest"] = "newest"


@router.get("/healthz")
def healthz(request: Request) -> dict:
    """Liveness of the daemon, without authentication."""
    fleet = fleet_of(request)
    return {"status": "ok", "runtime": fleet.runtime.name, "listed": fleet.reconciler.listed_once}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """The fleet in Prometheus' text format, without authentication (like /healthz)."""
    return PlainTextResponse(
        generate_latest(fleet_of(request).metrics), media_type=CONTENT_TYPE_LATEST
    )


@operator.get("/agents")
def list_agents(
    request: Request,
    phase: Annotated[list[Phase] | None, Query()] = None,
    strategy: Annotated[list[Strategy] | None, Query()] = None,
) -> list[dict]:
    """Every agent, oldest first, optionally only in these phases and strategies."""
    fleet = fleet_of(request)
    now = fleet.now()
    agents = fleet.store.agents(phase or None)
    return [agent_view(a, now) for a in agents if not strategy or a.strategy in strategy]


@operator.post("/agents", status_code=201)
async def spawn(request: Request, response: Response, body: SpawnRequest) -> dict:
    """Create agents; the same idempotency key replays the first answer (200)."""
    fleet = fleet_of(request)
    key = body.idempotency_key or secrets.token_hex(16)
    personalities = body.draw(body.count, key)
    agents, created = await run_in_threadpool(
        fleet.store.spawn, key, personalities, fleet.first_token_hash, fleet.now()
    )
    if created:
        fleet.reconciler.wake()
    else:
        response.status_code = 200
    now = fleet.now()
    return {"created": created, "agents": [agent_view(a, now) for a in agents]}


@operator.get("/agents/{ref}")
def get_agent(request: Request, ref: str, orders: bool = False) -> dict:
    """One agent by id, name or unique id prefix, with its personality, recent timeline
    and equity history; `orders=true` adds its recent orders, read from the platform."""
    fleet = fleet_of(request)
    agent = fleet.store.resolve(ref)
    view = agent_view(agent, fleet.now())
    view["personality"] = json.loads(agent.personality) if agent.personality else None
    view["events"] = [event_view(e) for e in fleet.store.events(agent.id, limit=50)]
    view["equity_history"] = [
        {"at": iso(at), "equity": equity} for at, equity in fleet.store.equity_history(agent.id)
    ]
    if orders:
        view["orders"], view["orders_error"] = _recent_orders(fleet, agent.credentials)
    return view


def _recent_orders(fleet: Fleet, sealed: str | None) -> tuple[list[dict], str | None]:
    """An agent's latest orders from the platform, or why they cannot be read."""
    if fleet.accounts is None or not sealed:
        return [], "no platform account"
    try:
        placed = fleet.accounts.orders(sealed)
    except (PlatformError, ValueError) as exc:
        return [], f"orders unavailable: {exc}"
    return [
        {
            "at": o.created_at,
            "symbol": o.symbol,
            "side": o.side,
            "status": o.status,
            "filled_qty": o.filled_qty,
            "filled_avg_price": o.filled_avg_price,
            "reject_reason": o.reject_reason,
        }
        for o in placed
    ], None


@operator.get("/agents/{ref}/logs", response_class=StreamingResponse)
def agent_logs(
    request: Request,
    ref: str,
    tail: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    follow: bool = False,
) -> StreamingResponse:
    """The output of the agent's workload: the last `tail` lines, then, with `follow`,
    new lines as they are written."""
    fleet = fleet_of(request)
    agent = fleet.store.resolve(ref)
    try:
        output = fleet.runtime.logs(agent.name, tail, follow)
    except RuntimeFailure as exc:
        raise ApiError(404, "no_logs", str(exc)) from None
    return StreamingResponse(output, media_type="text/plain; charset=utf-8")


@operator.get("/events")
def fleet_events(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> list[dict]:
    """The whole fleet's latest timeline entries, newest first."""
    return [event_view(e, name) for e, name in fleet_of(request).store.recent_events(limit)]


@operator.get("/alerts")
def alerts(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
    """The latest alerts and how their delivery went, newest first."""
    return [
        {
            "at": iso(a.at),
            "kind": a.kind,
            "agent_id": a.agent_id,
            "text": a.text,
            "delivery": a.delivery,
            "attempts": a.attempts,
        }
        for a in fleet_of(request).store.alerts(limit)
    ]


@operator.get("/agents/{ref}/events")
def agent_events(request: Request, ref: str) -> list[dict]:
    """An agent's lifecycle timeline, oldest first."""
    fleet = fleet_of(request)
    return [event_view(e) for e in fleet.store.events(fleet.store.resolve(ref).id)]


@operator.delete("/agents/{ref}", status_code=202)
async def retire_agent(request: Request, ref: str, flatten: bool = False) -> dict:
    """Retire an agent, with `flatten=true` selling its positions first (within the
    flatten deadline); retiring a retiring or retired agent changes nothing."""
    fleet = fleet_of(request)
    agent = await run_in_threadpool(fleet.store.resolve, ref)
    deadline = None
    if flatten:
        if fleet.accounts is None:
            raise ApiError(409, "no_platform", "flatten needs a platform: none is configured")
        deadline = fleet.now() + timedelta(seconds=fleet.settings.flatten_deadline_seconds)
    agent = await run_in_threadpool(fleet.store.request_retire, agent.id, fleet.now(), deadline)
    fleet.reconciler.wake()
    return agent_view(agent, fleet.now())


@operator.post("/fleet/pause")
async def pause(request: Request) -> dict:
    """The kill switch: every agent submits nothing from its next heartbeat on."""
    return await _set_paused(request, True)


@operator.post("/fleet/resume")
async def resume(request: Request) -> dict:
    """Lift the kill switch."""
    return await _set_paused(request, False)


async def _set_paused(request: Request, paused: bool) -> dict:
    fleet = fleet_of(request)
    changed = await run_in_threadpool(fleet.store.set_paused, paused, fleet.now())
    return {"paused": paused, "changed": changed}


@operator.put("/fleet/desired")
async def scale(request: Request, body: ScaleRequest) -> dict:
    """Set the fleet's size: spawn the missing agents or retire the surplus."""
    fleet = fleet_of(request)
    spawned, retiring = await run_in_threadpool(
        fleet.store.scale,
        body.size,
        body.draw,
        fleet.first_token_hash,
        fleet.now(),
        body.retire == "newest",
    )
    fleet.reconciler.wake()
    now = fleet.now()
    return {
        "size": body.size,
        "spawned": [agent_view(a, now) for a in spawned],
        "retiring": [agent_view(a, now) for a in retiring],
    }


@operator.get("/fleet")
def fleet_summary(request: Request) -> dict:
    """The fleet at a glance: sizes by phase, health, trading today, data and LLM costs."""
    return fleet_view(fleet_of(request))


router.include_router(operator)
