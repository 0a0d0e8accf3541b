"""Gateway data endpoints agents call with their own token (DESIGN §4.2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from feeds.universe import UNIVERSE, security
from orchestrator.api.errors import ApiError, fleet_of
from orchestrator.api.gateway import AgentDep
from orchestrator.feed_gateway import FeedUnavailable

router = APIRouter(prefix="/v1/feed", tags=["gateway"])

Symbols = Annotated[str, Query(min_length=1, max_length=600, description="comma-separated")]


def _symbols(raw: str) -> list[str]:
    symbols = [s.strip().upper() for s in raw.split(",") if s.strip()]
    unknown = [s for s in symbols if security(s) is None]
    if not symbols or len(symbols) > 50:
        raise ApiError(422, "invalid_request", "symbols: give 1 to 50 comma-separated symbols")
    if unknown:
        raise ApiError(422, "unknown_symbol", f"symbols not in the universe: {', '.join(unknown)}")
    return symbols


@router.get("/news")
async def news(
    request: Request, agent: AgentDep, symbols: Symbols, since: datetime | None = None
) -> dict:
    """Scored news about the symbols, newest first; `stale: true` when served from cache."""
    feeds = fleet_of(request).feeds
    if since is None:
        since = feeds.clock.now() - timedelta(days=1)
    if since.tzinfo is None:
        raise ApiError(422, "invalid_request", "since: give a timezone, e.g. 2026-01-05T14:30Z")
    try:
        return await feeds.news(agent.id, _symbols(symbols), since)
    except FeedUnavailable as exc:
        raise ApiError(503, "feed_unavailable", str(exc)) from None


@router.get("/quotes")
async def quotes(request: Request, agent: AgentDep, symbols: Symbols) -> dict:
    """Latest quotes of the symbols."""
    try:
        return await fleet_of(request).feeds.quotes(agent.id, _symbols(symbols))
    except FeedUnavailable as exc:
        raise ApiError(503, "feed_unavailable", str(exc)) from None


@router.get("/universe")
def universe(_agent: AgentDep) -> dict:
    """The tradable symbols with name, sector and market-cap bucket."""
    return {
        "symbols": [
            {"symbol": s.symbol, "name": s.name, "sector": s.sector, "market_cap": s.market_cap}
            for s in UNIVERSE
        ]
    }
