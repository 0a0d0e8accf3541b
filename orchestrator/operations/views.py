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
from datetime import datetime, timedelta
from pathlib import Path

from feeds.calendar import calendar_for
from orchestrator.control.accounts import Accounts
from orchestrator.gateway.feeds import FeedGateway
from orchestrator.lifecycle import FAILURES, FINAL, Phase
from orchestrator.state.health import StoreHealth
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent, AgentEvent, Alert, utc
from orchestrator.state.usage import UsageLedger
from platform_client import PlatformError


def iso(moment: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC, or None."""
    moment = utc(moment)
    return moment.isoformat() if moment else None


def _seconds(since: datetime | None, now: datetime) -> float | None:
    since = utc(since)
    return round((now - since).total_seconds(), 1) if since else None


def pnl(agent: Agent) -> float | None:
    """Equity gained since the agent's first report, or None before it has one."""
    if agent.equity is None or not agent.starting_equity:
        return None
    return agent.equity - agent.starting_equity


def pnl_today(agent: Agent, now: datetime) -> float | None:
    """Equity gained since the UTC day began (0 if the agent has not reported today)."""
    if agent.equity is None or agent.day_start_equity is None:
        return None
    if agent.equity_day != now.date().isoformat():
        return 0.0
    return agent.equity - agent.day_start_equity


def agent_view(agent: Agent, now: datetime) -> dict:
    """An agent as the operator sees it."""
    gained = pnl(agent)
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
        "pnl_today": None if (today := pnl_today(agent, now)) is None else round(today, 2),
        "cash": agent.cash,
        "open_positions": agent.open_positions,
        "orders_submitted": agent.orders_submitted,
        "orders_filled": agent.orders_filled,
        "orders_today": agent.orders_today,
        "last_error": agent.last_error,
        "reason": agent.reason,
        "restarts": agent.restarts,
        "failures": agent.failures,
        "next_restart_at": iso(agent.next_restart_at),
    }


def agent_detail(
    store: Store, agent: Agent, now: datetime, orders_from: Accounts | None, orders: bool
) -> dict:
    """An agent with its personality, recent timeline and equity history; with `orders`,
    also its recent orders, read from the platform with its own credentials."""
    view = agent_view(agent, now)
    view["personality"] = json.loads(agent.personality) if agent.personality else None
    view["events"] = [event_view(e) for e in store.events(agent.id, limit=50)]
    view["equity_history"] = [
        {"at": iso(at), "equity": equity} for at, equity in store.equity_history(agent.id)
    ]
    if orders:
        view["orders"], view["orders_error"] = recent_orders(orders_from, agent.credentials)
    return view


def recent_orders(accounts: Accounts | None, sealed: str | None) -> tuple[list[dict], str | None]:
    """An agent's latest orders from the platform, or why they cannot be read."""
    if accounts is None or not sealed:
        return [], "no platform account"
    try:
        placed = accounts.orders(sealed)
    except (PlatformError, ValueError) as exc:
        return [], f"orders unavailable: {exc}"
    return [
        {
            "at": o.created_at,
            "symbol": o.symbol,
            "side": o.side,
            "status": o.status,
            "filled_qty": o.filled_qty,
            "filled_avg_price": o.filled_avg_price,
            "reject_reason": o.reject_reason,
        }
        for o in placed
    ], None


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


class FleetSummary:
    """The fleet at a glance, from the store, the gateways and the reconciler."""

    def __init__(
        self,
        store: Store,
        usage: UsageLedger,
        feeds: FeedGateway,
        *,
        instance: str,
        runtime: str,
        market_hours: str,
        listed: Callable[[], bool],
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.usage = usage
        self.feeds = feeds
        self.instance = instance
        self.runtime = runtime
        self.calendar = calendar_for(market_hours)
        self.listed = listed
        self.now = now

    def market(self) -> dict:
        """Whether agents may trade now (in market time) and when that changes."""
        now = self.feeds.clock.now()
        return {
            "hours": self.calendar.hours,
            "open": self.calendar.is_open(now),
            "next_change": iso(self.calendar.next_change(now)),
        }

    def summary(self) -> dict:
        """Sizes by phase, health, trading today, data and LLM costs."""
        now = self.now()
        agents = self.store.agents()
        phases = Counter(a.phase for a in agents)
        live = [a for a in agents if a.phase not in FINAL]
        tokens_in, tokens_out, cost = self.usage.llm_day(now.strftime("%Y-%m-%d"))
        return {
            "instance": self.instance,
            "runtime": self.runtime,
            "listed": self.listed(),
            "paused": self.store.paused(),
            "desired": sum(1 for a in live if a.phase != Phase.RETIRING),
            "running": phases.get(Phase.RUNNING, 0),
            "by_phase": {p.value: phases.get(p.value, 0) for p in Phase},
            "total": len(agents),
            "restarts_last_hour": self.store.count_events(FAILURES, now - timedelta(hours=1)),
            "orders_today": sum(a.orders_today or 0 for a in live),
            "equity": round(sum(a.equity or 0 for a in live), 2),
            "pnl": round(sum(pnl(a) or 0.0 for a in live), 2),
            "pnl_today": round(sum(pnl_today(a, now) or 0.0 for a in live), 2),
            "market": self.market(),
            "feeds": self.feeds.report(),
            "llm_today": {"input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": cost},
        }


def health_problems(health: StoreHealth, state_dir: Path, min_free_bytes: int) -> list[str]:
    """What keeps the daemon from working now: the store's failures, and a disk with less
    than `min_free_bytes` (or 5 % of a small one) free under the state dir."""
    found = health.problems()
    disk = shutil.disk_usage(state_dir)
    free = disk.free
    if free < min(min_free_bytes, disk.total // 20):
        found.append(f"disk almost full: {free / 2**20:.1f} MiB free under {state_dir}")
    return found
