"""One measured figure, as every benchmark reports it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    budget: str = ""
    within_budget: bool | None = None
    detail: str = ""
