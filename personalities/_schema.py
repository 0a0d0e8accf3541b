"""The personality schema (DESIGN §4.5) and the parameters every strategy derives from it."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, computed_field

Strategy = Literal["news_momentum", "contrarian", "event_driven", "sector_rotation", "llm_analyst"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
Frequency = Literal["scalping", "day", "swing", "position"]
FREQUENCIES: tuple[str, ...] = get_args(Frequency)
CapBias = Literal["large", "mid", "small", "mixed"]
CAP_BIASES: tuple[str, ...] = get_args(CapBias)

# Market-time seconds between cycles, and how long a position is meant to be held.
_CYCLE_SECONDS = {"scalping": 60, "day": 300, "swing": 1800, "position": 14400}
_HOLDING_DAYS = {"scalping": 0.05, "day": 1, "swing": 5, "position": 20}


class Personality(BaseModel):
    """Who an agent is: sampled once, stored with the agent, handed over at bootstrap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40)
    strategy: Strategy
    risk_tolerance: float = Field(ge=0.1, le=0.9)
    trading_frequency: Frequency
    news_sensitivity: float = Field(ge=0, le=1)
    sentiment_weight: float = Field(ge=0, le=1)
    contrarian_tendency: float = Field(ge=0, le=1)
    sector_preferences: tuple[str, ...] = Field(min_length=1, max_length=11)
    market_cap_bias: CapBias

    @computed_field
    @property
    def position_fraction(self) -> float:
        """Target size of one position as a share of equity (the risk rails cap it at 15 %)."""
        return round(0.02 + 0.13 * (self.risk_tolerance - 0.1) / 0.8, 4)

    @computed_field
    @property
    def stop_loss(self) -> float:
        """Fractional loss at which a position is cut; bolder agents allow more."""
        return round(0.03 + 0.09 * self.risk_tolerance, 4)

    @computed_field
    @property
    def take_profit(self) -> float:
        """Fractional gain at which a position is taken off: twice the stop."""
        return round(2 * self.stop_loss, 4)

    @computed_field
    @property
    def cycle_seconds(self) -> int:
        """Market-time seconds between two trading cycles."""
        return _CYCLE_SECONDS[self.trading_frequency]

    @computed_field
    @property
    def holding_days(self) -> float:
        """How long a position is meant to be held."""
        return _HOLDING_DAYS[self.trading_frequency]

    @computed_field
    @property
    def news_weight(self) -> float:
        """How strongly a headline's sentiment moves this agent (0..1)."""
        return round(self.news_sensitivity * (0.5 + 0.5 * self.sentiment_weight), 4)
