"""`fleet simulate`: a whole fleet trading the simulated market, in one process, offline.

The same strategies, risk rails and catalyst memory as the agents (`agent_runtime.cycle`),
fed by the simulated market's prices and news (scored like the gateway scores them), with
paper fills at the market price in memory. Everything is a function of the seed: two runs
with the same arguments print the same results. Market time starts at `feeds.market.ORIGIN`
and advances in fixed steps; an agent acts when its personality's cycle is due.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent_runtime.cycle import HISTORY, Memory
from agent_runtime.decisions import Inputs, decide
from agent_runtime.risk import Book, RiskLimits
from agent_runtime.social import Candidate, review
from agent_runtime.strategies import MarketView, NewsView
from agent_runtime.strategies._base import SocialView
from feeds.market import ORIGIN, SimulatedMarket
from feeds.scorer import score
from feeds.universe import UNIVERSE
from personalities import Personality, Population, sample

SECTORS = {s.symbol: s.sector for s in UNIVERSE}


@dataclass
class _Agent:
    id: str
    personality: Personality
    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    entries: dict[str, float] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    last_cycle: int | None = None
    orders: int = 0
    orders_today: tuple[str, int] = ("", 0)
    following: set[str] = field(default_factory=set)
    fills: deque[SocialView] = field(default_factory=lambda: deque(maxlen=20))

    def equity(self, prices: dict[str, float]) -> float:
        return self.cash + sum(q * prices[s] for s, q in self.positions.items())


@dataclass(frozen=True)
class SimulationResult:
    """Per agent and per strategy outcomes of one run."""

    agents: list[dict]
    by_strategy: dict[str, dict]
    steps: int
    social: dict  # the follow graph at the end, and how much the social signal was used


class _News:
    """Scored news views of the simulated market's events, scored once per event."""

    def __init__(self, market: SimulatedMarket) -> None:
        self.market = market
        self.symbols = [s.symbol for s in UNIVERSE]
        self._scored: dict[str, NewsView] = {}

    def around(self, now: datetime) -> list[NewsView]:
        views = []
        for event in self.market.events(self.symbols, now - timedelta(days=2), now):
            view = self._scored.get(event.id)
            if view is None:
                s = score(event.headline)
                view = NewsView(event.symbol, s.score, 1.0, s.event_type, event.at, event.headline)
                self._scored[event.id] = view
            views.append(view)
        return views


def _fill(agent: _Agent, verdict_orders: list, prices: dict[str, float], now: datetime) -> None:
    for order in verdict_orders:
        price = prices[order.symbol]
        held = agent.positions.get(order.symbol, 0.0)
        if order.side == "buy":
            agent.cash -= order.qty * price
            agent.entries[order.symbol] = (
                agent.entries.get(order.symbol, 0.0) * held + price * order.qty
            ) / (held + order.qty)
            agent.positions[order.symbol] = held + order.qty
        else:
            agent.cash += order.qty * price
            agent.positions[order.symbol] = held - order.qty
            if agent.positions[order.symbol] <= 0:
                del agent.positions[order.symbol]
                agent.entries.pop(order.symbol, None)
        agent.memory.filled(order, price, held, now)
        agent.orders += 1
        agent.fills.append(SocialView(order.symbol, order.side, agent.id, now))


def _review_follows(
    fleet: list[_Agent], prices: dict[str, float], cash: float, seed: int, day: str
) -> None:
    """Each agent's daily review of whom it follows, as live agents do it."""
    followers = {a.id: 0 for a in fleet}
    for agent in fleet:
        for followee in agent.following:
            followers[followee] += 1
    board = [
        Candidate(
            a.id,
            a.equity(prices) / cash - 1,
            followers[a.id],
            frozenset(SECTORS[s] for s in a.positions),
        )
        for a in fleet
    ]
    for agent in fleet:
        rng = random.Random(f"{seed}:{agent.id}:{day}")
        mind = agent.personality.model_dump()
        change = review(mind, agent.id, board, agent.following, rng, first=not agent.following)
        agent.following -= set(change.unfollow)
        agent.following |= set(change.follow)


def _social_figures(fleet: list[_Agent], decisions: int, social: int) -> dict:
    counts = sorted((sum(a.id in b.following for b in fleet) for a in fleet), reverse=True)
    follows = sum(counts)
    top = counts[: max(1, len(counts) // 10)]
    return {
        "follows": follows,
        "most_followed": counts[0] if counts else 0,
        "median_followers": counts[len(counts) // 2] if counts else 0,
        "top_decile_share": round(sum(top) / follows, 3) if follows else 0.0,
        "decisions": decisions,
        "decisions_with_social_input": social,
    }


def simulate(
    agents: int,
    days: int,
    seed: int,
    population: Population,
    limits: RiskLimits,
    step_minutes: int = 60,
    starting_cash: float = 100_000.0,
) -> SimulationResult:
    """Run `agents` sampled from `population` over `days` of simulated market, under the
    same risk `limits` as the live agents."""
    market = SimulatedMarket(seed)
    news = _News(market)
    fleet = [
        _Agent(str(i), p, starting_cash) for i, p in enumerate(sample(agents, seed, population))
    ]
    by_id = {a.id: a for a in fleet}
    sectors = SECTORS
    caps = {s.symbol: s.market_cap for s in UNIVERSE}
    history: dict[str, deque[float]] = {s: deque(maxlen=HISTORY) for s in sectors}
    start = ORIGIN + timedelta(days=1)
    steps = days * 24 * 60 // step_minutes
    prices: dict[str, float] = {}
    reviewed, decisions, social = "", 0, 0
    for step in range(steps):
        now = start + timedelta(minutes=step * step_minutes)
        prices = market.prices(now)
        for symbol, price in prices.items():
            history[symbol].append(price)
        returns = {s: h[-1] / h[0] - 1 for s, h in history.items() if len(h) > 1}
        items = news.around(now)
        day = now.strftime("%Y-%m-%d")
        if day != reviewed:
            _review_follows(fleet, prices, starting_cash, seed, day)
            reviewed = day
        for agent in fleet:
            p = agent.personality
            cycle = int(now.timestamp() // p.cycle_seconds)
            if cycle == agent.last_cycle:
                continue
            agent.last_cycle = cycle
            view = MarketView(
                prices=prices,
                news=items,
                sectors=sectors,
                caps=caps,
                returns=returns,
                held_since=agent.memory.held_since,
                entry_prices=agent.entries,
                social=[
                    fill
                    for followee in sorted(agent.following)
                    for fill in by_id[followee].fills
                    if fill.at > now - timedelta(days=2)
                ],
            )
            done = agent.orders_today[1] if agent.orders_today[0] == day else 0
            decision = decide(
                Inputs(
                    strategy=p.strategy,
                    personality=p.model_dump(),
                    limits=limits,
                    view=view,
                    book=Book(agent.cash, agent.equity(prices), dict(agent.positions)),
                    now=now,
                    orders_today=done,
                    paused=False,
                    catalyst_weights=agent.memory.catalysts.weights(),
                )
            )
            decisions += 1
            social += bool(view.social)
            _fill(agent, decision.verdict.orders, prices, now)
            agent.orders_today = (day, done + len(decision.verdict.orders))
    rows, by_strategy = _summarise(fleet, prices, starting_cash)
    return SimulationResult(rows, by_strategy, steps, _social_figures(fleet, decisions, social))


def _summarise(
    fleet: list[_Agent], prices: dict[str, float], cash: float
) -> tuple[list[dict], dict[str, dict]]:
    rows = [
        {
            "name": a.personality.name,
            "strategy": a.personality.strategy,
            "equity": round(a.equity(prices), 2),
            "pnl_pct": round((a.equity(prices) / cash - 1) * 100, 3),
            "orders": a.orders,
            "positions": len(a.positions),
            "catalysts": a.memory.catalysts.report(),
        }
        for a in fleet
    ]
    by_strategy: dict[str, dict] = {}
    for row in rows:
        group = by_strategy.setdefault(row["strategy"], {"agents": 0, "orders": 0, "pnl": []})
        group["agents"] += 1
        group["orders"] += row["orders"]
        group["pnl"].append(row["pnl_pct"])
    for group in by_strategy.values():
        pnl = group.pop("pnl")
        group["mean_pnl_pct"] = round(sum(pnl) / len(pnl), 3)
        group["best_pnl_pct"], group["worst_pnl_pct"] = max(pnl), min(pnl)
    return rows, dict(sorted(by_strategy.items()))
