"""Catalyst learning: how well each kind of news event has paid this agent, bounded.

Every closed trade that an event opened updates that event type's score, an exponential
moving average of the trade's return. The score tilts how strongly the agent acts on the
same kind of event next time, within 0.5×..1.5×, so a few bad trades can neither switch a
catalyst off nor let one run away. Pure and in memory; reported in every heartbeat, and
handed back at bootstrap, so a restarted agent goes on from what it had learned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

ALPHA = 0.3  # weight of the newest trade
SENSITIVITY = 5.0  # a +10 % average return → +0.5 tilt (the cap)


class CatalystScores:
    """Per event type: smoothed return of the trades it triggered, and how many."""

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.trades: dict[str, int] = {}

    def record(self, event_type: str, trade_return: float) -> None:
        """Fold one closed trade's return into its event type's score."""
        bounded = max(-1.0, min(1.0, trade_return))
        previous = self.scores.get(event_type)
        self.scores[event_type] = (
            bounded if previous is None else ((1 - ALPHA) * previous + ALPHA * bounded)
        )
        self.trades[event_type] = self.trades.get(event_type, 0) + 1

    def restore(self, report: Mapping[str, Any]) -> None:
        """Go on from a `report` of an earlier process of this agent (its bootstrap hands
        it back); an entry that is not one is passed over."""
        for event_type, learned in report.items():
            try:
                score, trades = float(learned["score"]), int(learned["trades"])
            except (KeyError, TypeError, ValueError, OverflowError):
                continue
            if math.isfinite(score) and trades > 0:
                self.scores[event_type] = max(-1.0, min(1.0, score))
                self.trades[event_type] = trades

    def weights(self) -> dict[str, float]:
        """Multipliers on each event type's weight, within 0.5..1.5."""
        return {
            k: round(1 + max(-0.5, min(0.5, v * SENSITIVITY)), 4) for k, v in self.scores.items()
        }

    def report(self) -> dict[str, dict[str, float]]:
        """For the heartbeat."""
        return {
            k: {"score": round(v, 4), "trades": self.trades[k], "weight": self.weights()[k]}
            for k, v in self.scores.items()
        }
