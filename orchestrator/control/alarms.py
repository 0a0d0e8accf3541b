"""When an agent's trading needs the operator: under its equity floor, too far below its
peak, or with its latest orders all rejected. Pure: the gateway asks after each heartbeat
and each order, and the store raises an alarm's alert once when the alarm begins (an
episode), and forgets it when the condition ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.lifecycle import AlertKind

EQUITY_ALARMS = frozenset({AlertKind.EQUITY_FLOOR, AlertKind.DRAWDOWN})
ORDER_ALARMS = frozenset({AlertKind.REJECTIONS})


@dataclass(frozen=True)
class Thresholds:
    """Where each alarm begins."""

    equity_floor: float  # dollars (the risk rail's minimum equity)
    drawdown: float  # a fraction of the peak
    rejections: int  # orders in a row


def equity_alarms(
    name: str, equity: float | None, peak: float | None, limits: Thresholds
) -> dict[AlertKind, str]:
    """The equity alarms that hold for an agent at `equity`, each with its alert text."""
    found: dict[AlertKind, str] = {}
    if equity is None:
        return found
    if equity < limits.equity_floor:
        found[AlertKind.EQUITY_FLOOR] = (
            f"agent {name} is under its equity floor of ${limits.equity_floor:,.2f}: "
            f"${equity:,.2f}; the risk rails stop its new orders"
        )
    if peak and (fallen := (peak - equity) / peak) >= limits.drawdown:
        found[AlertKind.DRAWDOWN] = (
            f"agent {name} is {fallen:.1%} below its peak equity "
            f"(${equity:,.2f} against ${peak:,.2f}; alert at {limits.drawdown:.0%})"
        )
    return found


def order_alarms(name: str, statuses: list[str], limits: Thresholds) -> dict[AlertKind, str]:
    """The order alarms that hold, given the agent's latest order statuses (newest first)."""
    latest = statuses[: limits.rejections]
    if len(latest) == limits.rejections and all(s == "rejected" for s in latest):
        return {
            AlertKind.REJECTIONS: f"agent {name}: its last {limits.rejections} orders were "
            "all rejected by the platform"
        }
    return {}
