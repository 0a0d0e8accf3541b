"""The gateway's HTTP routes (DESIGN §4.2): what agents call with their own token.

A token reads only its own agent; a revoked or unknown token gets 401 from the
`Gatekeeper` before the body is read. Routes are thin: they parse and hand over to
`gateway/`.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# which name objects local to the router's factory.

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from feeds.universe import UNIVERSE, security
from orchestrator.api.errors import ApiError
from orchestrator.api.lane import answer
from orchestrator.gateway.agents import AgentGateway, Heartbeat, HeartbeatReply
from orchestrator.gateway.decisions import DecisionBatch, DecisionIntake, OverBudget
from orchestrator.gateway.feeds import FeedGateway, FeedUnavailable
from orchestrator.gateway.llm import AssessRequest, LlmGateway
from orchestrator.gateway.relay import PlatformRelay, relayed
from orchestrator.state.tables import Agent

Symbols = Annotated[str, Query(min_length=1, max_length=600, description="comma-separated")]


def _symbols(raw: str) -> list[str]:
    symbols = [s.strip().upper() for s in raw.split(",") if s.strip()]
    unknown = [s for s in symbols if security(s) is None]
    if not symbols or len(symbols) > 50:
        raise ApiError(422, "invalid_request", "symbols: give 1 to 50 comma-separated symbols")
    if unknown:
        raise ApiError(422, "unknown_symbol", f"symbols not in the universe: {', '.join(unknown)}")
    return symbols


def gateway_router(
    agents: AgentGateway,
    decisions: DecisionIntake,
    feeds: FeedGateway,
    llm: LlmGateway,
    relay: PlatformRelay | None,
) -> APIRouter:
    """The agent, decision-record, feed, LLM and platform-relay routes over these gateways
    (`relay` is None when the fleet has no platform)."""
    router = APIRouter(prefix="/v1", tags=["gateway"])

    async def current_agent(request: Request) -> Agent:
        """The agent whose token the `Gatekeeper` checked before the body was read."""
        agent = getattr(request.state, "agent", None)
        if agent is None:
            raise ApiError(401, "unauthorized", "unknown or revoked agent token")
        return agent

    Caller = Annotated[Agent, Depends(current_agent)]

    @router.get("/agent/bootstrap")
    def bootstrap(agent: Caller) -> dict:
        """The agent's identity and schedule; everything it needs beyond its three variables."""
        return agents.bootstrap(agent).to_json()

    @router.post("/agent/heartbeat")
    async def heartbeat(agent: Caller, beat: Heartbeat) -> HeartbeatReply:
        """Record a heartbeat and answer with the fleet's orders for this agent (a plain
        one is answered by `api.lane` before it gets here)."""
        return await answer(agents, agent, beat)

    @router.post("/agent/decisions")
    def decision_records(agent: Caller, batch: DecisionBatch) -> dict:
        """Keep a batch of the agent's decision records; a resent batch adds nothing. A
        batch past the agent's daily budget is refused (403): the agent drops it and says
        so in its last error."""
        try:
            return decisions.keep(agent, batch)
        except OverBudget as exc:
            raise ApiError(403, "over_budget", str(exc)) from None

    @router.get("/feed/news")
    async def news(agent: Caller, symbols: Symbols, since: datetime | None = None) -> dict:
        """Scored news about the symbols, newest first; `stale: true` when served from cache."""
        if since is None:
            since = feeds.clock.now() - timedelta(days=1)
        if since.tzinfo is None:
            raise ApiError(422, "invalid_request", "since: give a timezone, e.g. 2026-01-05T14:30Z")
        try:
            return await feeds.news(agent.id, _symbols(symbols), since)
        except FeedUnavailable as exc:
            raise ApiError(503, "feed_unavailable", str(exc)) from None

    @router.get("/feed/quotes")
    async def quotes(agent: Caller, symbols: Symbols) -> dict:
        """Latest quotes of the symbols."""
        try:
            return await feeds.quotes(agent.id, _symbols(symbols))
        except FeedUnavailable as exc:
            raise ApiError(503, "feed_unavailable", str(exc)) from None

    @router.get("/feed/universe")
    def universe(_agent: Caller) -> dict:
        """The tradable symbols with name, sector and market-cap bucket."""
        return {
            "symbols": [
                {"symbol": s.symbol, "name": s.name, "sector": s.sector, "market_cap": s.market_cap}
                for s in UNIVERSE
            ]
        }

    @router.post("/llm/assess")
    async def assess(agent: Caller, body: AssessRequest) -> dict:
        """A structured assessment of the symbols, charged to this agent, or an abstention."""
        return await llm.assess(agent.id, {"name": agent.name, "strategy": agent.strategy}, body)

    async def platform(agent: Caller, path: str, request: Request) -> Response:
        """One of the agent's own platform calls, passed on with its own platform login."""
        if relay is None:
            raise ApiError(404, "no_platform", "this fleet has no trading platform")
        if not relayed(request.method, path):
            raise ApiError(403, "not_relayed", f"{request.method} /{path} is not relayed")
        answer = await relay.forward(
            agent,
            request.method,
            path,
            request.url.query,
            await request.body(),
            request.headers.get("x-platform-authorization"),
        )
        return Response(answer.body, answer.status, headers=answer.headers)

    for method in ("GET", "POST", "DELETE"):  # a route each: one OpenAPI operation id each
        router.add_api_route(
            "/platform/{path:path}", platform, methods=[method], name=f"platform_{method.lower()}"
        )
    return router
