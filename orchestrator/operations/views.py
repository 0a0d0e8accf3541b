"""What the operator surfaces show, as plain data: agents, timelines, the fleet summary
and the fleet report.

The operator API returns these as JSON, the web dashboard renders them, the terminal
dashboard reads them through the API and `/metrics` exports them: one definition of
"P&L", "uptime" or "problems first" for all four. No token or credential is ever part
of a view.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from feeds.calendar import calendar_for, trading_day
from orchestrator.gateway.feeds import FeedGateway
from orchestrator.lifecycle import FAILURES, FINAL, UNFINISHED, Phase
from orchestrator.operations.why import circles, explain, reason
from orchestrator.state.decisions import Decision, DecisionBook
from orchestrator.state.equity import EquityBook
from orchestrator.state.health import StoreHealth
from orchestrator.state.orders import OrderBook
from orchestrator.state.rollouts import admitted, short
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent, AgentEvent, Alert, OrderRecord, RolloutRecord, utc
from orchestrator.state.usage import UsageLedger


def iso(moment: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC, or None."""
    moment = utc(moment)
    return moment.isoformat() if moment else None


def _seconds(since: datetime | None, now: datetime) -> float | None:
    since = utc(since)
    return round((now - since).total_seconds(), 1) if since else None


def pnl(agent: Agent | sa.Row) -> float | None:
    """Equity gained since the agent's first report, or None before it has one."""
    if agent.equity is None or not agent.starting_equity:
        return None
    return agent.equity - agent.starting_equity


def pnl_today(agent: Agent | sa.Row, day: str) -> float | None:
    """Equity gained since the market's trading `day` began (`FleetSummary.orders_today`,
    the day orders are counted on): 0 if the agent has not reported on it."""
    if agent.equity is None or agent.day_start_equity is None:
        return None
    if agent.equity_day != day:
        return 0.0
    return agent.equity - agent.day_start_equity


def open_positions(agent: Agent) -> int | None:
    """How many positions the agent holds: as the platform last listed them through the
    relay, else as the agent last reported."""
    if agent.positions is not None:
        return len(json.loads(agent.positions))
    return agent.open_positions


def agent_view(agent: Agent, now: datetime, today: tuple[str, int] | None = None) -> dict:
    """An agent as the operator sees it; `today` is the market's trading day and the
    agent's orders on it, from the fleet's order book (`FleetSummary.orders_today`): its
    orders and P&L today are None where it was not asked."""
    gained = pnl(agent)
    day, placed = today or (None, None)
    gained_today = None if day is None else pnl_today(agent, day)
    live = agent.phase in (Phase.RUNNING, Phase.STARTING) and agent.container_id
    return {
        "id": agent.id,
        "name": agent.name,
        "strategy": agent.strategy,
        "phase": agent.phase,
        "container_id": agent.container_id,
        "created_at": iso(agent.created_at),
        "updated_at": iso(agent.updated_at),
        "uptime_seconds": _seconds(agent.container_started_at, now) if live else None,
        "last_heartbeat_at": iso(agent.last_heartbeat_at),
        "heartbeat_age_seconds": _seconds(agent.last_heartbeat_at, now),
        "last_cycle": agent.last_cycle,
        "equity": agent.equity,
        "starting_equity": agent.starting_equity,
        "pnl": None if gained is None else round(gained, 2),
        "pnl_pct": None if gained is None else round(100 * gained / agent.starting_equity, 3),
        "pnl_today": None if gained_today is None else round(gained_today, 2),
        "cash": agent.cash,
        "open_positions": open_positions(agent),
        "orders_submitted": agent.orders_submitted,
        "orders_filled": agent.orders_filled,
        "orders_today": placed,
        "last_error": agent.last_error,
        "reason": agent.reason,
        "restarts": agent.restarts,
        "failures": agent.failures,
        "node": agent.node,
        "next_restart_at": iso(agent.next_restart_at),
    }


def agent_detail(
    store: Store, book: OrderBook, agent: Agent, now: datetime, today: tuple[str, int]
) -> dict:
    """An agent with its personality, open positions, recent orders (from the fleet's own
    order book, so they outlive its account), timeline and equity history."""
    view = agent_view(agent, now, today)
    view["personality"] = json.loads(agent.personality) if agent.personality else None
    # each position with the news event that opened it, as the agent last reported
    opened = json.loads(agent.open_trades) if agent.open_trades else {}
    view["positions"] = [
        p | {"opened_on": (opened.get(p["symbol"]) or {}).get("catalyst")}
        for p in (json.loads(agent.positions) if agent.positions else [])
    ]
    view["positions_at"] = iso(agent.positions_at)
    view["catalysts"] = json.loads(agent.catalysts) if agent.catalysts else {}
    view["learned"] = learned(view["catalysts"])
    orders = book.recent(agent.id)
    records = DecisionBook(store).reasons(agent.id, [o.client_order_id for o in orders])
    view["orders"] = [
        order_view(o) | {"why": reason(records.get(o.client_order_id, {}), o.client_order_id)}
        for o in orders
    ]
    view |= circles(store, agent)
    view["events"] = [event_view(e) for e in store.events(agent.id, limit=50)]
    view["equity_history"] = [
        {"at": iso(at), "equity": equity} for at, equity in EquityBook(store).history(agent.id)
    ]
    return view


def learned(catalysts: dict) -> str:
    """What an agent has learned of each kind of event, in words: how much more or less
    it acts on it now, after how many closed trades (most first); empty for nothing yet."""
    ranked = sorted(catalysts.items(), key=lambda item: (-item[1]["trades"], item[0]))
    return ", ".join(
        f"{kind} ×{c['weight']:.2f} ({c['trades']} trade{'' if c['trades'] == 1 else 's'})"
        for kind, c in ranked
    )


def decision_view(decision: Decision) -> dict:
    """A decision record as the API shows it, with its explanation in words."""
    return {
        "cycle": decision.cycle,
        "decided_at": iso(decision.decided_at),
        "strategy": decision.strategy,
        "record": decision.record,
        "explanation": explain(decision),
    }


def order_view(order: OrderRecord) -> dict:
    """One order; `placed_at` is market time, as the platform stamped it."""
    return {
        "placed_at": iso(order.placed_at),
        "client_order_id": order.client_order_id,
        "order_id": order.order_id,
        "market_day": order.market_day,
        "symbol": order.symbol,
        "side": order.side,
        "status": order.status,
        "qty": order.qty,
        "price": order.price,
        "rationale": order.rationale,
        "reject_reason": order.reject_reason,
    }


def alert_view(alert: Alert) -> dict:
    """One alert and how its delivery went."""
    return {
        "at": iso(alert.at),
        "kind": alert.kind,
        "agent_id": alert.agent_id,
        "text": alert.text,
        "delivery": alert.delivery,
        "attempts": alert.attempts,
    }


def event_view(event: AgentEvent, agent_name: str | None = None) -> dict:
    """One timeline entry, with its agent's name when it comes from the whole fleet."""
    view = {"at": iso(event.at), "kind": event.kind, "message": event.message}
    if agent_name is not None:
        view.update(agent_id=event.agent_id, agent=agent_name)
    return view


# What the summary reads of each agent: at 1,000 agents, the whole rows as objects took
# 25-75 ms, these columns 3-5 ms (the CLI, the dashboard and `bench scale` ask every few
# seconds)
_SUMMED = ("phase", "equity", "starting_equity", "day_start_equity", "equity_day")


class FleetSummary:
    """The fleet at a glance, from the store, the gateways and the reconciler."""

    def __init__(
        self,
        store: Store,
        book: OrderBook,
        usage: UsageLedger,
        feeds: FeedGateway,
        *,
        instance: str,
        runtime: str,
        market_hours: str,
        listed: Callable[[], bool],
        now: Callable[[], datetime],
        platform: Callable[[], tuple[datetime | None, int]] | None = None,
    ) -> None:
        self.store = store
        self.book = book
        self.usage = usage
        self.feeds = feeds
        self.instance = instance
        self.runtime = runtime
        self.calendar = calendar_for(market_hours)
        self.listed = listed
        self.now = now
        self.platform = platform  # the relay's `reach`; None: no platform is configured
        self._curves: tuple[datetime, Curves] | None = None

    def market(self) -> dict:
        """Whether agents may trade now (in market time) and when that changes."""
        now = self.feeds.clock.now()
        return {
            "hours": self.calendar.hours,
            "open": self.calendar.is_open(now),
            "next_change": iso(self.calendar.next_change(now)),
        }

    def reach(self) -> dict | None:
        """Whether the platform answers the gateway's relay, and if not since when and
        after how many failed calls; None without a platform."""
        if self.platform is None:
            return None
        since, failed = self.platform()
        return {"reachable": since is None, "down_since": iso(since), "failed_calls": failed}

    def curves(self, window: timedelta = timedelta(hours=24)) -> Curves:
        """The fleet's equity, P&L by strategy and drawdown over the last `window`, read
        again at most every CURVES_SECONDS (the overview reloads every 3 s; a day of
        samples of a big fleet is a lot to read that often)."""
        now = self.now()
        if self._curves is None or now - self._curves[0] >= timedelta(seconds=CURVES_SECONDS):
            samples = EquityBook(self.store).samples(now - window, now, CURVE_STEPS)
            self._curves = (now, fleet_curves(samples, self.store.present(now - window)))
        return self._curves[1]

    def orders_today(self) -> tuple[str, Counter[str]]:
        """The market's trading day now, and how many orders each agent placed on it."""
        day = trading_day(self.feeds.clock.now())
        return day, self.book.orders_on(day)

    def summary(self) -> dict:
        """Sizes by phase, health, trading today, data and LLM costs."""
        now = self.now()
        phases = self.store.phase_counts()
        live = self.store.columns(_SUMMED, UNFINISHED)
        day, orders = self.orders_today()
        tokens_in, tokens_out, cost = self.usage.llm_day(now.strftime("%Y-%m-%d"))
        return {
            "instance": self.instance,
            "runtime": self.runtime,
            "listed": self.listed(),
            "paused": self.store.paused(),
            "desired": sum(1 for a in live if a.phase != Phase.RETIRING),
            "running": phases.get(Phase.RUNNING, 0),
            "by_phase": {p.value: phases.get(p.value, 0) for p in Phase},
            "total": sum(phases.values()),
            "restarts_last_hour": self.store.count_events(FAILURES, now - timedelta(hours=1)),
            "market_day": day,
            "orders_today": sum(orders.values()),
            "equity": round(sum(a.equity or 0 for a in live), 2),
            "pnl": round(sum(pnl(a) or 0.0 for a in live), 2),
            "pnl_today": round(sum(pnl_today(a, day) or 0.0 for a in live), 2),
            "market": self.market(),
            "platform": self.reach(),
            "feeds": self.feeds.report(),
            "llm_today": {"input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": cost},
        }


CURVES_SECONDS = 30
CURVE_STEPS = 60  # points on a curve: over a day of samples, one every 24 minutes


@dataclass(frozen=True)
class Curves:
    """The fleet over a window: its equity, P&L by strategy, and its drawdowns (as a
    fraction of the peak before them: the deepest, and the one now)."""

    equity: list[tuple[datetime, float]]
    pnl_by_strategy: dict[str, list[tuple[datetime, float]]]
    max_drawdown: float
    drawdown: float


def fleet_curves(
    samples: list[tuple[str, datetime, float]], agents: list[Agent], steps: int = CURVE_STEPS
) -> Curves:
    """Fleet equity and P&L by strategy at `steps` even moments across `samples`. An
    agent counts from its creation until it retires or fails (its last change): with its
    first report until it has a sample, then with its last sample until its next one (and
    after it stops reporting); its P&L is against its first report. So the curves end
    where the fleet's summary stands: on the agents still in the fleet.

    The drawdowns are of what the fleet earned, not of its size: an agent's arrival
    (its first equity) and departure (its last) move the equity curve but not the
    index the drawdowns are read from (each step's return without them, compounded)."""
    strategy = {a.id: a.strategy for a in agents}
    gone = {a.id: utc(a.updated_at) for a in agents if a.phase in FINAL}
    start = {a.id: a.starting_equity for a in agents}
    born = sorted((utc(a.created_at), a.id) for a in agents if a.starting_equity)
    equity: list[tuple[datetime, float]] = []
    pnl: dict[str, list[tuple[datetime, float]]] = {}
    index = [1.0]
    if len(samples) >= 2:
        first, last = samples[0][1], samples[-1][1]
        latest: dict[str, float] = {}
        i = j = 0
        for k in range(steps + 1):
            moment = first + (last - first) * k / steps
            before, moved = sum(latest.values()), 0.0  # moved: what came in, less what left
            while j < len(born) and born[j][0] <= moment:
                agent_id = born[j][1]
                if agent_id not in latest:
                    latest[agent_id] = start[agent_id]
                    moved += latest[agent_id]
                j += 1
            while i < len(samples) and samples[i][1] <= moment:
                agent_id, _, value = samples[i]
                moved += value if agent_id not in latest else 0.0
                latest[agent_id] = value
                i += 1
            for agent_id in [a for a in latest if a in gone and gone[a] < moment]:
                moved -= latest.pop(agent_id)
            total = sum(latest.values())
            equity.append((moment, round(total, 2)))
            if before:
                index.append(index[-1] * (total - moved) / before)
            by: Counter[str] = Counter()
            for agent_id, value in latest.items():
                if agent_id in strategy and start[agent_id]:
                    by[strategy[agent_id]] += value - start[agent_id]
            for name in set(strategy.values()):
                pnl.setdefault(name, []).append((moment, round(by[name], 2)))
    peak, deepest, now = 0.0, 0.0, 0.0
    for value in index:
        peak = max(peak, value)
        now = (peak - value) / peak
        deepest = max(deepest, now)
    return Curves(equity, pnl, round(deepest, 4), round(now, 4))


def health_problems(health: StoreHealth, state_dir: Path, min_free_bytes: int) -> list[str]:
    """What keeps the daemon from working now: the store's failures, and a disk with less
    than `min_free_bytes` (or 5 % of a small one) free under the state dir."""
    found = health.problems()
    disk = shutil.disk_usage(state_dir)
    free = disk.free
    if free < min(min_free_bytes, disk.total // 20):
        found.append(f"disk almost full: {free / 2**20:.1f} MiB free under {state_dir}")
    return found


def rollout_view(record: RolloutRecord) -> dict:
    """One rollout of a new agent image, as the CLI and API show it."""
    return {
        "id": record.id,
        "state": record.state,
        "old_image": short(record.old_image),
        "new_image": short(record.new_image),
        "admitted": len(admitted(record)),
        "started_at": iso(record.started_at),
        "step_at": iso(record.step_at),
        "finished_at": iso(record.finished_at),
        "reason": record.reason,
    }
