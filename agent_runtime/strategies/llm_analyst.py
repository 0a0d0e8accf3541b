"""Follow the LLM gateway's assessment; on abstention, fall back to its rule-based twin."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from agent_runtime.risk import Book, Intent
from agent_runtime.strategies._base import MarketView
from agent_runtime.strategies.news_momentum import propose as momentum

NAME = "llm_analyst"
VERSION = 1


def propose(
    personality: Mapping, view: MarketView, book: Book, now: datetime, **hooks: object
) -> list[Intent]:
    """The model's buy/sell calls, or news momentum when it abstained."""
    answer = view.assessment
    if not answer or answer.get("abstained"):
        return momentum(personality, view, book, now, **hooks)
    intents = []
    for decision in answer.get("decisions", []):
        symbol, action = decision.get("symbol"), decision.get("action")
        held = book.positions.get(symbol, 0) > 0
        if (action == "buy" and not held) or (action == "sell" and held):
            intents.append(
                Intent(
                    symbol,
                    action,
                    float(decision.get("conviction", 0)),
                    f"LLM: {decision.get('rationale', '')}"[:200],
                )
            )
    return intents
