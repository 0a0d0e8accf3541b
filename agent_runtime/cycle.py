"""One agent's trading cycle: gateway data → strategy → risk rails → orders.

The cycle number comes from the market clock (`(market time − the agent's offset) // cycle
seconds`; the offset, derived from the agent id, keeps a fleet out of lockstep), and every
order's `client_order_id` is built from (agent, cycle, symbol, side): an agent restarted in
the middle of a cycle sends the same ids again and the platform replays instead of filling
twice. Anything malformed from the gateway (missing fields, NaN prices, no news) skips
the cycle with an error for the heartbeat; nothing here may end the agent.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from agent_runtime.account import AccountLink
from agent_runtime.catalysts import CatalystScores
from agent_runtime.circle import Circle
from agent_runtime.contract import Bootstrap, ClockSpec
from agent_runtime.decisions import Inputs, decide, record, sampled
from agent_runtime.gateway import GatewayClient, GatewayError
from agent_runtime.outbox import Outbox
from agent_runtime.risk import Book, Order
from agent_runtime.strategies import MarketView, NewsView
from agent_runtime.strategies._base import eligible
from feeds.calendar import calendar_for, trading_day
from feeds.clock import MarketClock
from platform_client import Order as Placed
from platform_client import PlatformError, Portfolio

log = logging.getLogger("agent.cycle")
HISTORY = 30  # prices kept per symbol for recent returns
MAX_SYMBOLS = 50
NO_ORDER_SAMPLE_RATE = 0.1  # share of decisions without an order that are recorded


def market_clock(clock: ClockSpec) -> MarketClock:
    """The market clock the orchestrator's bootstrap describes."""
    return MarketClock(clock.time_scale, clock.anchor)


def client_order_id(agent_id: str, cycle: int, symbol: str, side: str) -> str:
    """The same intent in the same cycle always gets the same id (≤ 48 characters)."""
    return f"{agent_id[:8]}-{cycle}-{symbol}-{side}"[:48]


class CycleResult:
    """What one trading cycle did; `portfolio` is the account as the cycle read it, before
    its orders."""

    def __init__(
        self, cycle: int, error: str | None = None, portfolio: Portfolio | None = None
    ) -> None:
        self.cycle = cycle
        self.submitted = 0
        self.filled = 0
        self.error = error
        self.portfolio = portfolio


def _moment(stamp: str | None) -> datetime | None:
    """A platform timestamp as a moment; None if it is not one."""
    try:
        at = datetime.fromisoformat(stamp or "")
    except ValueError:
        return None
    return at if at.tzinfo else None


def _day_of(stamp: str | None) -> str | None:
    """The trading day of a platform timestamp; None if it is not one."""
    at = _moment(stamp)
    return trading_day(at) if at else None


def opened_at(orders: Sequence[Placed], held: Mapping[str, float]) -> dict[str, datetime]:
    """When each held position was opened, as far as the account's listed orders go back:
    undoing its fills from the newest, the buy that took it up from nothing (or the oldest
    listed buy, when the list ends first)."""
    left = dict(held)
    opened: dict[str, datetime] = {}
    dated = [(at, o) for o in orders if o.filled_qty > 0 and (at := _moment(o.created_at))]
    for at, order in sorted(dated, key=lambda pair: pair[0], reverse=True):
        if order.symbol not in left:
            continue
        if order.side == "buy":
            opened[order.symbol] = at
            left[order.symbol] -= order.filled_qty
            if left[order.symbol] <= 0:
                del left[order.symbol]
        else:
            left[order.symbol] += order.filled_qty
    return opened


def _prices(raw: dict) -> dict[str, float]:
    prices = {}
    for quote in raw.get("quotes", []):
        price = quote.get("price")
        if isinstance(price, int | float) and math.isfinite(price) and price > 0:
            prices[str(quote["symbol"])] = float(price)
    return prices


def _news(raw: dict) -> list[NewsView]:
    items = []
    for item in raw.get("items", []):
        try:
            sentiment = item["sentiment"]
            score = float(sentiment["score"])
            if not math.isfinite(score):
                continue
            published = datetime.fromisoformat(item["published_at"])
            for symbol in item["symbols"]:
                items.append(
                    NewsView(
                        symbol,
                        max(-1.0, min(1.0, score)),
                        float(sentiment.get("relevance", 1.0)),
                        item.get("event_type"),
                        published,
                        str(item.get("headline", ""))[:200],
                        str(item.get("id", ""))[:64],
                    )
                )
        except (KeyError, TypeError, ValueError):
            continue  # one bad item does not spoil the rest
    return items


class Memory:
    """What an agent remembers between cycles about its positions and its catalysts. What
    it has learned, and which event opened each position it holds, go out in its
    heartbeats and come back at bootstrap: a restarted agent goes on from them."""

    def __init__(self) -> None:
        self.held_since: dict[str, datetime] = {}
        self.opened_by: dict[str, tuple[str, float]] = {}  # symbol → (event type, entry)
        self.catalysts = CatalystScores()

    def restore(self, catalysts: Mapping[str, Any], open_trades: Mapping[str, Any]) -> None:
        """Go on from what an earlier process of this agent reported (see `open_trades`);
        an entry that is not one is passed over."""
        self.catalysts.restore(catalysts)
        for symbol, trade in open_trades.items():
            try:
                catalyst, entry = trade["catalyst"], float(trade["entry"])
            except (KeyError, TypeError, ValueError, OverflowError):
                continue
            if isinstance(catalyst, str) and catalyst and math.isfinite(entry) and entry > 0:
                self.opened_by[symbol] = (catalyst, entry)

    def open_trades(self) -> dict[str, dict[str, Any]]:
        """For the heartbeat: the event that opened each position held, and its entry
        price, so that the trade still teaches its catalyst if it closes after a restart."""
        return {
            symbol: {"catalyst": catalyst, "entry": entry}
            for symbol, (catalyst, entry) in sorted(self.opened_by.items())
        }

    def track(
        self, held: Mapping[str, float], now: datetime, listed: Callable[[], Sequence[Placed]]
    ) -> None:
        """Keep up with the positions the platform shows: forget the closed ones, and date
        each one this process never saw bought (it was restarted, or a fill came after its
        order's answer) by the account's `listed` orders, or else from `now`, so that
        strategies that exit on time still exit."""
        for symbol in self.held_since.keys() - held.keys():
            del self.held_since[symbol]
        for symbol in self.opened_by.keys() - held.keys():
            del self.opened_by[symbol]  # closed unseen (or while no process ran): no lesson
        unknown = {s: qty for s, qty in held.items() if qty > 0 and s not in self.held_since}
        if unknown:
            opened = opened_at(listed(), unknown)
            self.held_since.update({s: opened.get(s, now) for s in unknown})

    def filled(self, order: Order, price: float | None, held_before: float, now: datetime) -> None:
        """Track a fill; a closed trade teaches the catalyst that opened it."""
        if order.side == "buy":
            self.held_since.setdefault(order.symbol, now)
            if order.catalyst and price:
                self.opened_by.setdefault(order.symbol, (order.catalyst, price))
        elif held_before - order.qty <= 0:
            self.held_since.pop(order.symbol, None)
            opened = self.opened_by.pop(order.symbol, None)
            if opened and price:
                self.catalysts.record(opened[0], price / opened[1] - 1)


class Trader:
    """An agent's trading state across cycles, and the I/O of each cycle."""

    def __init__(self, boot: Bootstrap, gateway: GatewayClient, account: AccountLink) -> None:
        self.agent_id = boot.agent_id
        self.personality = boot.personality or {"strategy": boot.strategy}
        self.strategy = self.personality.get("strategy", boot.strategy)
        self.limits = boot.risk_limits
        self.cycle_seconds = float(self.personality.get("cycle_seconds", 300))
        self.clock = market_clock(boot.clock)
        self.calendar = calendar_for(boot.clock.hours)
        self.reopens: datetime | None = None
        # Each agent's cycles start at its own offset, so a fleet never trades in lockstep;
        # derived from the id, the offset (and so every cycle number) survives a restart.
        digest = hashlib.sha256(self.agent_id.encode()).digest()
        self.offset = int.from_bytes(digest[:4]) % max(1, int(self.cycle_seconds))
        self.gateway = gateway
        self.account = account
        self.last_cycle: int | None = None
        self.orders_today: tuple[str, int] = ("", 0)
        self.history: dict[str, deque[float]] = {}
        self.universe: dict[str, dict] = {}
        self.memory = Memory()
        self.memory.restore(boot.catalysts or {}, boot.open_trades or {})
        followed_on = boot.followed_at and self.clock.at(boot.followed_at)
        self.circle = Circle(self.agent_id, self.personality, account, followed_on)
        self.outbox = Outbox()
        self.submitted_total = 0
        self.filled_total = 0

    def orders_on(self, now: datetime) -> int:
        """Orders submitted on the trading day of `now` (the exchange's date), counted on
        from the platform's list when this process started."""
        day, count = self.orders_today
        return count if day == trading_day(now) else 0

    @property
    def catalysts(self) -> CatalystScores:
        """What the agent has learned about each kind of event."""
        return self.memory.catalysts

    def cycle_at(self, now: datetime) -> int:
        """The number of the trading cycle `now` falls in: it only ever grows."""
        return int((now.timestamp() - self.offset) // self.cycle_seconds)

    def due(self, now: datetime) -> int | None:
        """The cycle to run now, or None if this cycle has already run."""
        cycle = self.cycle_at(now)
        return None if cycle == self.last_cycle else cycle

    def run(self, cycle: int, now: datetime, paused: bool) -> CycleResult:
        """Run one cycle; every failure becomes `error`, never an exception. Outside the
        market's session the cycle is skipped without a call: no data, no orders."""
        self.last_cycle = cycle
        if not self.calendar.is_open(now):
            reopens = self.calendar.next_change(now)
            if reopens != self.reopens:
                self.reopens = reopens
                log.info("market closed until %s: holding orders", reopens and reopens.isoformat())
            return CycleResult(cycle)
        try:
            return self._run(cycle, now, paused)
        except (GatewayError, PlatformError) as exc:
            return CycleResult(cycle, error=f"cycle {cycle} skipped: {exc}")
        except Exception as exc:  # malformed data must not end the agent
            log.exception("cycle %s failed", cycle)
            return CycleResult(cycle, error=f"cycle {cycle} skipped: {type(exc).__name__}: {exc}")

    def _view(
        self, now: datetime, held: dict[str, float], entries: dict[str, float]
    ) -> MarketView | None:
        if not self.universe:
            self.universe = {u["symbol"]: u for u in self.gateway.universe()["symbols"]}
        sectors = {s: u["sector"] for s, u in self.universe.items()}
        caps = {s: u["market_cap"] for s, u in self.universe.items()}
        probe = MarketView(prices=dict.fromkeys(sectors, 1.0), news=[], sectors=sectors, caps=caps)
        symbols = sorted(set(eligible(self.personality, probe)) | set(held))[:MAX_SYMBOLS]
        if not symbols:
            return None
        prices = _prices(self.gateway.quotes(symbols))
        news = _news(self.gateway.news(symbols, (now - timedelta(days=2)).isoformat()))
        for symbol, price in prices.items():
            self.history.setdefault(symbol, deque(maxlen=HISTORY)).append(price)
        social = self.circle.trades(now)
        return MarketView(
            prices=prices,
            news=news,
            sectors=sectors,
            caps=caps,
            returns={s: h[-1] / h[0] - 1 for s, h in self.history.items() if len(h) > 1},
            held_since={s: t for s, t in self.memory.held_since.items() if s in held},
            entry_prices=entries,
            assessment=self._assess(symbols, news, held)
            if self.strategy == "llm_analyst"
            else None,
            social=social,
        )

    def _run(self, cycle: int, now: datetime, paused: bool) -> CycleResult:
        portfolio = self.account.session.call(self.account.client.portfolio)
        held = {p.symbol: p.qty for p in portfolio.positions}
        # The account's latest 100 orders, read at most once a cycle and only when needed.
        listed = cache(lambda: self.account.session.call(self.account.client.orders, 100))
        self.memory.track(held, now, listed)
        view = self._view(now, held, {p.symbol: p.avg_price for p in portfolio.positions})
        if view is None:
            return CycleResult(cycle, error="no symbols match this personality")
        day = trading_day(now)  # the exchange's date, as the relay counts the daily cap
        if not self.orders_today[0]:  # this process's first cycle: today may have orders
            # counted from the platform's list, not from zero again after a restart
            self.orders_today = (day, sum(_day_of(o.created_at) == day for o in listed()))
        done_today = self.orders_on(now)
        inputs = Inputs(
            strategy=self.strategy,
            personality=self.personality,
            limits=self.limits,
            view=view,
            book=Book(portfolio.cash, portfolio.equity, held),
            now=now,
            orders_today=done_today,
            paused=paused,
            catalyst_weights=self.memory.catalysts.weights(),
        )
        decision = decide(inputs)
        result = CycleResult(cycle, error=decision.error, portfolio=portfolio)
        ids = {
            (o.symbol, o.side): client_order_id(self.agent_id, cycle, o.symbol, o.side)
            for o in decision.verdict.orders
        }
        for order in decision.verdict.orders:
            if not self.calendar.is_open(self.clock.now()):
                break  # the bell rang while this cycle ran: the rest waits for the next session
            try:
                placed = self.account.session.call(
                    self.account.client.submit_order,
                    ids[order.symbol, order.side],
                    order.symbol,
                    order.side,
                    qty=order.qty,
                    rationale=order.rationale,
                )
            except PlatformError as exc:
                result.error = f"order {order.side} {order.symbol} refused: {exc}"
                continue
            result.submitted += 1
            if placed.status == "filled":
                result.filled += 1
                self.memory.filled(order, placed.filled_avg_price, held.get(order.symbol, 0), now)
        if decision.verdict.orders or sampled(self.agent_id, cycle, NO_ORDER_SAMPLE_RATE):
            self.outbox.add(record(cycle, inputs, decision, ids))
        self.orders_today = (day, done_today + result.submitted)
        self.submitted_total += result.submitted
        self.filled_total += result.filled
        result.error = result.error or self.circle.review(now, self.universe)
        return result

    def _assess(self, symbols: list[str], news: list[NewsView], held: dict) -> dict:
        headlines = [{"symbol": n.symbol, "headline": n.headline} for n in news if n.headline][:40]
        positions = [{"symbol": s, "qty": q} for s, q in held.items()][:20]
        try:
            return self.gateway.assess(
                {"symbols": symbols[:20], "headlines": headlines, "positions": positions}
            )
        except GatewayError as exc:
            return {"abstained": True, "reason": str(exc)}
