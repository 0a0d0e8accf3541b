"""Operator endpoints for the CLI and dashboards (DESIGN §4.3), behind the operator token."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from orchestrator import keys
from orchestrator.api.errors import ApiError, bearer, fleet_of
from orchestrator.phases import Phase
from orchestrator.store import Agent, AgentEvent, utc
from personalities import ARCHETYPES, PopulationError, Strategy, parse_population, sample


def require_operator(request: Request) -> None:
    """Reject a request that lacks the operator token."""
    if not keys.tokens_equal(bearer(request), fleet_of(request).operator_token):
        raise ApiError(401, "unauthorized", "wrong or missing operator token")


router = APIRouter(tags=["operator"])
operator = APIRouter(prefix="/v1", dependencies=[Depends(require_operator)])


def _iso(moment: datetime | None) -> str | None:
    moment = utc(moment)
    return moment.isoformat() if moment else None


def agent_view(agent: Agent, now: datetime) -> dict:
    """An agent as the operator API shows it; no token or credential ever appears."""
    beat = utc(agent.last_heartbeat_at)
    return {
        "id": agent.id,
        "name": agent.name,
        "strategy": agent.strategy,
        "phase": agent.phase,
        "container_id": agent.container_id,
        "created_at": _iso(agent.created_at),
        "updated_at": _iso(agent.updated_at),
        "last_heartbeat_at": _iso(beat),
        "heartbeat_age_seconds": round((now - beat).total_seconds(), 1) if beat else None,
        "last_cycle": agent.last_cycle,
        "equity": agent.equity,
        "cash": agent.cash,
        "open_positions": agent.open_positions,
        "orders_submitted": agent.orders_submitted,
        "last_error": agent.last_error,
        "reason": agent.reason,
    }


def event_view(event: AgentEvent) -> dict:
    """One timeline entry."""
    return {"at": _iso(event.at), "kind": event.kind, "message": event.message}


class SpawnRequest(BaseModel):
    """`POST /v1/agents`: how many agents, sampled from which population, and the key that
    makes a retry safe. `population` is an archetype name or an inline population."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=1000)
    strategy: Strategy | None = None
    seed: int | None = None
    population: str | dict = "balanced"
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64)


def sample_personalities(body: SpawnRequest, key: str) -> list[dict]:
    """The spawn's personalities; without a seed, the key seeds them (a replay matches)."""
    if isinstance(body.population, str):
        if body.population not in ARCHETYPES:
            known = ", ".join(ARCHETYPES)
            raise ApiError(
                422,
                "invalid_request",
                f"population: unknown archetype {body.population!r}; known: {known}",
            )
        population = ARCHETYPES[body.population]
    else:
        try:
            population = parse_population(body.population, "population")
        except PopulationError as exc:
            raise ApiError(422, "invalid_population", str(exc)) from None
    seed = (
        body.seed
        if body.seed is not None
        else int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    )
    fleet = sample(body.count, seed, population)
    if body.strategy:
        fleet = [p.model_copy(update={"strategy": body.strategy}) for p in fleet]
    return [p.model_dump(mode="json") for p in fleet]


@router.get("/healthz")
def healthz(request: Request) -> dict:
    """Liveness of the daemon, without authentication."""
    fleet = fleet_of(request)
    return {"status": "ok", "runtime": fleet.runtime.name, "listed": fleet.reconciler.listed_once}


@operator.get("/agents")
def list_agents(request: Request, phase: Phase | None = None) -> list[dict]:
    """Every agent, oldest first, optionally in one phase."""
    fleet = fleet_of(request)
    now = fleet.now()
    agents = fleet.store.agents([phase] if phase else None)
    return [agent_view(a, now) for a in agents]


@operator.post("/agents", status_code=201)
async def spawn(request: Request, response: Response, body: SpawnRequest) -> dict:
    """Create agents; the same idempotency key replays the first answer (200)."""
    fleet = fleet_of(request)
    key = body.idempotency_key or secrets.token_hex(16)
    personalities = sample_personalities(body, key)
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
def get_agent(request: Request, ref: str) -> dict:
    """One agent by id, name or unique id prefix, with its recent timeline."""
    fleet = fleet_of(request)
    agent = fleet.store.resolve(ref)
    view = agent_view(agent, fleet.now())
    view["events"] = [event_view(e) for e in fleet.store.events(agent.id, limit=50)]
    return view


@operator.get("/agents/{ref}/events")
def agent_events(request: Request, ref: str) -> list[dict]:
    """An agent's lifecycle timeline, oldest first."""
    fleet = fleet_of(request)
    return [event_view(e) for e in fleet.store.events(fleet.store.resolve(ref).id)]


@operator.delete("/agents/{ref}", status_code=202)
async def retire_agent(request: Request, ref: str) -> dict:
    """Retire an agent; retiring a retiring or retired agent changes nothing."""
    fleet = fleet_of(request)
    agent = await run_in_threadpool(fleet.store.resolve, ref)
    agent = await run_in_threadpool(fleet.store.request_retire, agent.id, fleet.now())
    fleet.reconciler.wake()
    return agent_view(agent, fleet.now())


@operator.get("/fleet")
def fleet_summary(request: Request) -> dict:
    """Counts by phase and what the daemon runs on."""
    fleet = fleet_of(request)
    phases = Counter(a.phase for a in fleet.store.agents())
    return {
        "instance": fleet.settings.instance,
        "runtime": fleet.runtime.name,
        "listed": fleet.reconciler.listed_once,
        "by_phase": {p.value: phases.get(p.value, 0) for p in Phase},
        "total": sum(phases.values()),
        "feeds": fleet.feeds.report(),
    }


router.include_router(operator)
