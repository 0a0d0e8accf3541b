"""The operator's HTTP routes (DESIGN §4.3) for the CLI and dashboards, behind the operator
token; and the unauthenticated `/healthz` and `/metrics`. Thin: every change goes through
`operations.commands`, every answer is an `operations.views` view."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# which name objects local to the router's factory.

import secrets
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import Field

from orchestrator.api.errors import ApiError
from orchestrator.lifecycle import Phase
from orchestrator.operations.commands import Commands, NoPlatform
from orchestrator.operations.sampling import Sampling
from orchestrator.operations.summaries import problems_first
from orchestrator.operations.views import (
    FleetSummary,
    agent_detail,
    agent_view,
    alert_view,
    decision_view,
    event_view,
    order_view,
)
from orchestrator.runtime import Runtime, RuntimeFailure
from orchestrator.state.decisions import DecisionBook
from orchestrator.state.store import Store
from orchestrator.untrusted import quoted
from personalities import Strategy


class SpawnRequest(Sampling):
    """`POST /v1/agents`: how many agents and the key that makes a retry safe."""

    count: int = Field(ge=1, le=1000)
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64)


class ScaleRequest(Sampling):
    """`PUT /v1/fleet/desired`: the fleet size wanted, and which agents go first."""

    size: int = Field(ge=0, le=1000)
    retire: Literal["newest", "oldest"] = "newest"


def health_router(
    instance: str,
    runtime: str,
    listed: Callable[[], bool],
    problems: Callable[[], list[str]],
    metrics: CollectorRegistry,
) -> APIRouter:
    """`/healthz` and `/metrics`, without authentication."""
    router = APIRouter(tags=["operator"])

    @router.get("/healthz")
    def healthz(response: Response) -> dict:
        """The daemon's health, without authentication: "degraded" (503) with the reasons
        while the store or the disk fails."""
        found = problems()
        if found:
            response.status_code = 503
        status = "degraded" if found else "ok"
        return {
            "status": status,
            "problems": found,
            "instance": instance,
            "runtime": runtime,
            "listed": listed(),
        }

    @router.get("/metrics", response_class=PlainTextResponse)
    def export() -> PlainTextResponse:
        """The fleet in Prometheus' text format, without authentication (like /healthz)."""
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return router


def operator_router(
    commands: Commands,
    summary: FleetSummary,
    store: Store,
    runtime: Runtime,
) -> APIRouter:
    """The `/v1` operator routes (the `Gatekeeper` checks the operator token)."""
    router = APIRouter(prefix="/v1", tags=["operator"])

    @router.get("/agents")
    def list_agents(
        phase: Annotated[list[Phase] | None, Query()] = None,
        strategy: Annotated[list[Strategy] | None, Query()] = None,
        worst: Annotated[int | None, Query(ge=1, le=1000)] = None,
    ) -> list[dict]:
        """Every agent, oldest first, optionally only in these phases and strategies; with
        `worst`, only that many, those that most need attention first (as the dashboards
        order them), for a view with room for a few."""
        now = summary.now()
        agents = store.agents(phase or None)
        day, today = summary.orders_today()
        views = [
            agent_view(a, now, (day, today[a.id]))
            for a in agents
            if not strategy or a.strategy in strategy
        ]
        return views if worst is None else problems_first(views)[:worst]

    @router.post("/agents", status_code=201)
    async def spawn(response: Response, body: SpawnRequest) -> dict:
        """Create agents; the same idempotency key replays the first answer (200)."""
        key = body.idempotency_key or secrets.token_hex(16)
        agents, created = await run_in_threadpool(commands.spawn, body.count, key, body)
        if not created:
            response.status_code = 200
        now = summary.now()
        return {"created": created, "agents": [agent_view(a, now) for a in agents]}

    @router.get("/agents/{ref}")
    def get_agent(ref: str) -> dict:
        """One agent by id, name or unique id prefix, with its personality, positions,
        recent orders, timeline and equity history."""
        agent = store.resolve(ref)
        day, today = summary.orders_today()
        return agent_detail(store, summary.book, agent, summary.now(), (day, today[agent.id]))

    @router.get("/agents/{ref}/decisions")
    def agent_decisions(ref: str, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict]:
        """The agent's latest decision records, newest first, each explained."""
        agent = store.resolve(ref)
        return [decision_view(d) for d in DecisionBook(store).latest(agent.id, limit)]

    @router.get("/orders/{ref:path}/why")  # a platform may put a "/" in its ids
    def why(ref: str) -> dict:
        """One order (platform or client order id) and the decision that sent it."""
        found = DecisionBook(store).for_order(ref)
        if found is None:
            raise ApiError(404, "not_found", f"no order {quoted(ref)} in the fleet's order book")
        order, decision = found
        agent = store.get(order.agent_id)
        return {
            "agent": agent.name,
            "order": order_view(order),
            "decision": decision_view(decision) if decision else None,
        }

    @router.get("/agents/{ref}/logs", response_class=StreamingResponse)
    def agent_logs(
        ref: str,
        tail: Annotated[int | None, Query(ge=0, le=100_000)] = None,
        follow: bool = False,
    ) -> StreamingResponse:
        """The output of the agent's workload: the last `tail` lines, then, with `follow`,
        new lines as they are written."""
        agent = store.resolve(ref)
        try:
            output = runtime.logs(agent.name, tail, follow)
        except RuntimeFailure as exc:
            raise ApiError(404, "no_logs", str(exc)) from None
        return StreamingResponse(output, media_type="text/plain; charset=utf-8")

    @router.get("/events")
    def fleet_events(limit: Annotated[int, Query(ge=1, le=500)] = 20) -> list[dict]:
        """The whole fleet's latest timeline entries, newest first."""
        return [event_view(e, name) for e, name in store.recent_events(limit)]

    @router.get("/alerts")
    def alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
        """The latest alerts and how their delivery went, newest first."""
        return [alert_view(a) for a in store.alerts(limit)]

    @router.get("/agents/{ref}/events")
    def agent_events(ref: str) -> list[dict]:
        """An agent's lifecycle timeline, oldest first."""
        return [event_view(e) for e in store.events(store.resolve(ref).id)]

    @router.delete("/agents/{ref}", status_code=202)
    async def retire_agent(ref: str, flatten: bool = False) -> dict:
        """Retire an agent, with `flatten=true` selling its positions first (within the
        flatten deadline); retiring a retiring or retired agent changes nothing."""
        try:
            agent = await run_in_threadpool(commands.retire, ref, flatten)
        except NoPlatform as exc:
            raise ApiError(409, "no_platform", str(exc)) from None
        return agent_view(agent, summary.now())

    @router.post("/fleet/pause")
    async def pause() -> dict:
        """The kill switch: every agent submits nothing from its next heartbeat on."""
        return {"paused": True, "changed": await run_in_threadpool(commands.pause, True)}

    @router.post("/fleet/resume")
    async def resume() -> dict:
        """Lift the kill switch."""
        return {"paused": False, "changed": await run_in_threadpool(commands.pause, False)}

    @router.put("/fleet/desired")
    async def scale(body: ScaleRequest) -> dict:
        """Set the fleet's size: spawn the missing agents or retire the surplus."""
        scaled = await run_in_threadpool(commands.scale, body.size, body, body.retire == "newest")
        now = summary.now()
        return {
            "size": body.size,
            "spawned": [agent_view(a, now) for a in scaled.spawned],
            "retiring": [agent_view(a, now) for a in scaled.retiring],
        }

    @router.get("/fleet")
    def fleet_summary() -> dict:
        """The fleet at a glance: sizes by phase, health, trading today, data and LLM costs."""
        return summary.summary()

    return router
