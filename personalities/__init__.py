"""Personality schema, seeded sampler and population files (DESIGN §4.5).

So far only the strategy names an agent can be spawned with.
"""

from typing import Literal, get_args

Strategy = Literal["news_momentum", "contrarian", "event_driven", "sector_rotation", "llm_analyst"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

__all__ = ["STRATEGIES", "Strategy"]
