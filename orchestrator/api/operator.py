"""Operator endpoints for the CLI and dashboards (DESIGN §4.3), behind the operator token."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from datetime import datetime, timedelta
from typing import Literal

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
        "restarts": agent.restarts,
        "failures": agent.failures,
        "next_restart_at": _iso(agent.next_restart_at),
    }


def event_view(event: AgentEvent) -> dict:
    """One timeline entry."""
    return {"at": _iso(event.at), "kind": event.kind, "message": event.message}


class Sampling(BaseModel):
    """How new agents' personalities are drawn: `population` is an archetype name or an
    inline population; without a seed, the spawn key seeds them (so a replay matches)."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy | None = None
    seed: int | None = None
    population: str | dict = "balanced"


class SpawnRequest(Sampling):
    """`POST /v1/agents`: how many agents and the key that makes a retry safe."""

    count: int = Field(ge=1, le=1000)
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64)


class ScaleRequest(Sampling):
    """`PUT /v1/fleet/desired`: the fleet size wanted, and which agents go first."""

    size: int = Field(ge=0, le=1000)
    retire: Literal["newest", "oldest"] = "newest"


def sample_personalities(body: Sampling, count: int, key: str) -> list[dict]:
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
    fleet = sample(count, seed, population)
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
    personalities = sample_personalities(body, body.count, key)
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
        lambda count, key: sample_personalities(body, count, key),
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
    """Counts by phase and what the daemon runs on."""
    fleet = fleet_of(request)
    phases = Counter(a.phase for a in fleet.store.agents())
    return {
        "instance": fleet.settings.instance,
        "runtime": fleet.runtime.name,
        "listed": fleet.reconciler.listed_once,
        "paused": fleet.store.paused(),
        "by_phase": {p.value: phases.get(p.value, 0) for p in Phase},
        "total": sum(phases.values()),
        "feeds": fleet.feeds.report(),
    }


router.include_router(operator)
