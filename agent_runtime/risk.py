"""Risk rails (DESIGN §4.6): the layer between every strategy (or LLM) and the platform.

"Conviction requests, risk disposes." A strategy proposes intents (symbol, side,
conviction 0..1); this module turns them into whole-share orders that cannot breach a
limit, and says why it dropped the rest. It is pure: no I/O, no clock, stdlib only.

Limits: no trading while the fleet is paused or equity is below the floor; no buy makes a
position exceed `max_position_fraction` of equity or opens an eleventh position; buys
never spend more than the cash; sells never exceed what is held; the day's orders stay
under the daily cap. Buy size scales with the personality's `position_fraction` and the
intent's conviction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

NOTHING: Mapping = MappingProxyType({})  # an empty mapping no one can fill: a default


class RiskLimits(NamedTuple):
    """Hard limits, set in the orchestrator's settings and handed over at bootstrap."""

    max_position_fraction: float
    max_positions: int
    min_equity: float
    max_orders_per_day: int


class Intent(NamedTuple):
    """What a strategy would like to do."""

    symbol: str
    side: str  # buy | sell
    conviction: float  # 0..1
    rationale: str = ""
    catalyst: str | None = None  # the event type behind it, for catalyst learning


class Order(NamedTuple):
    """What the rails allow: whole shares, ready to submit."""

    symbol: str
    side: str
    qty: int
    rationale: str
    catalyst: str | None = None


class Book(NamedTuple):
    """The account as the rails see it."""

    cash: float
    equity: float
    positions: Mapping[str, float] = NOTHING  # symbol → shares held


class Verdict:
    """The orders to submit; for every dropped intent, the reason; for every order smaller
    than its conviction asked, the limit that cut it."""

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.dropped: list[tuple[Intent, str]] = []
        self.clamped: list[tuple[Order, str]] = []


def _valid_price(price: float | None) -> bool:
    return price is not None and math.isfinite(price) and price > 0


def apply_rails(
    intents: Sequence[Intent],
    book: Book,
    prices: Mapping[str, float],
    *,
    position_fraction: float,
    orders_today: int,
    paused: bool,
    limits: RiskLimits,
) -> Verdict:
    """Clamp `intents` to orders that respect every limit, in the order given."""
    verdict = Verdict()
    if paused or not (math.isfinite(book.equity) and book.equity >= limits.min_equity):
        reason = "fleet paused" if paused else f"equity below ${limits.min_equity:,.0f}"
        verdict.dropped = [(intent, reason) for intent in intents]
        return verdict
    held = {s: q for s, q in book.positions.items() if q > 0}
    cash = book.cash if math.isfinite(book.cash) else 0.0
    budget = max(0, limits.max_orders_per_day - orders_today)
    for intent in intents:
        price = prices.get(intent.symbol)
        conviction = (
            min(1.0, max(0.0, intent.conviction)) if math.isfinite(intent.conviction) else 0
        )
        if budget == 0:
            reason = f"daily order cap of {limits.max_orders_per_day} reached"
        elif not _valid_price(price):
            reason = "no valid price"
        elif intent.side == "sell":
            qty = math.floor(held.get(intent.symbol, 0.0) * conviction + 1e-9)
            qty = min(qty, math.floor(held.get(intent.symbol, 0.0) + 1e-9))
            reason = "" if qty >= 1 else "nothing to sell"
        elif intent.side == "buy":
            qty, reason, cut = _buy_qty(
                intent.symbol, conviction, price, held, cash, book.equity, position_fraction, limits
            )
        else:
            reason = f"unknown side {intent.side!r}"
        if reason:
            verdict.dropped.append((intent, reason))
            continue
        order = Order(intent.symbol, intent.side, qty, intent.rationale, intent.catalyst)
        verdict.orders.append(order)
        if intent.side == "buy" and cut:
            verdict.clamped.append((order, cut))
        budget -= 1
        if intent.side == "buy":
            cash -= qty * price
            held[intent.symbol] = held.get(intent.symbol, 0.0) + qty
        else:
            cash += qty * price
            held[intent.symbol] = held[intent.symbol] - qty
            if held[intent.symbol] <= 1e-9:
                del held[intent.symbol]
    return verdict


def _buy_qty(
    symbol: str,
    conviction: float,
    price: float,
    held: Mapping[str, float],
    cash: float,
    equity: float,
    position_fraction: float,
    limits: RiskLimits,
) -> tuple[int, str, str]:
    """Shares to buy, the reason for none, and the limit that made it smaller than wanted."""
    if symbol not in held and len(held) >= limits.max_positions:
        return 0, f"already {limits.max_positions} positions", ""
    room = equity * limits.max_position_fraction - held.get(symbol, 0.0) * price
    wanted = equity * min(position_fraction, limits.max_position_fraction) * conviction
    cut = ""
    if position_fraction > limits.max_position_fraction or min(room, cash) < wanted:
        cut = (
            f"position cap of {limits.max_position_fraction:.0%} of equity"
            if room <= cash
            else f"cash of ${cash:,.0f}"
        )
    qty = math.floor(min(wanted, room, cash) / price + 1e-9)
    # Guard against rounding: the order itself must fit, whole shares only.
    while qty > 0 and (
        qty * price > cash
        or (held.get(symbol, 0.0) + qty) * price > equity * limits.max_position_fraction
    ):
        qty -= 1
    return (qty, "", cut) if qty >= 1 else (0, "too small after limits", "")
