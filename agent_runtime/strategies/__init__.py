"""Strategies: one module each, registered here by name (interface version 1).

Adding a strategy is one file with `NAME`, `VERSION` and `propose(...)`, plus its line
below. `propose_safely` is the boundary: a strategy that raises is reported, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from types import ModuleType

from agent_runtime.risk import Book, Intent
from agent_runtime.strategies import (
    contrarian,
    event_driven,
    llm_analyst,
    news_momentum,
    sector_rotation,
)
from agent_runtime.strategies._base import INTERFACE_VERSION, MarketView, NewsView

log = logging.getLogger("agent.strategy")

REGISTRY: dict[str, ModuleType] = {
    m.NAME: m for m in (news_momentum, contrarian, event_driven, sector_rotation, llm_analyst)
}


def propose_safely(
    name: str, personality: Mapping, view: MarketView, book: Book, now: datetime, **hooks: object
) -> tuple[list[Intent], str | None]:
    """The strategy's intents, or none and the error it raised."""
    strategy = REGISTRY.get(name)
    if strategy is None:
        return [], f"unknown strategy {name!r}"
    try:
        return strategy.propose(personality, view, book, now, **hooks), None
    except Exception as exc:  # a strategy bug must not kill the agent
        log.exception("strategy %s failed", name)
        return [], f"strategy {name} failed: {type(exc).__name__}: {exc}"[:300]


__all__ = ["INTERFACE_VERSION", "REGISTRY", "MarketView", "NewsView", "propose_safely"]
