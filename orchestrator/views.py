"""What the operator surfaces show, as plain data: agents, timelines, the fleet summary
and the fleet report.

The operator API returns these as JSON, the web dashboard renders them, the terminal
dashboard reads them through the API and `/metrics` exports them: one definition of
"P&L", "uptime" or "problems first" for all four. No token or credential is ever part
of a view.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from feeds.calendar import calendar_for
from orchestrator.phases import FINAL, Phase
from orchestrator.store import Agent, AgentEvent, utc

if TYPE_CHECKING:
    from orchestrator.daemon import Fleet

# Timeline kinds that are a failure of the agent's workload (each one is a restart).
FAILURE_KINDS = ("exited", "oom_killed", "vanished", "unhealthy")
# Problems first: the order in which phases are listed.
_SEVERITY = {
    Phase.CRASHLOOP: 0,
    Phase.FAILED: 1,
    Phase.UNHEALTHY: 2,
    Phase.BACKOFF: 3,
    Phase.PROVISIONING: 4,
    Phase.PENDING: 5,
    Phase.STARTING: 6,
    Phase.RETIRING: 7,
    Phase.RUNNING: 8,
    Phase.RETIRED: 9,
}


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


def problems_first(views: list[dict]) -> list[dict]:
    """Agents in crash loops, failed or unhealthy first, then by name."""
    return sorted(
        views,
        key=lambda v: (_SEVERITY.get(Phase(v["phase"]), 9), not v["last_error"], v["name"]),
    )


def event_view(event: AgentEvent, agent_name: str | None = None) -> dict:
    """One timeline entry, with its agent's name when it comes from the whole fleet."""
    view = {"at": iso(event.at), "kind": event.kind, "message": event.message}
    if agent_name is not None:
        view.update(agent_id=event.agent_id, agent=agent_name)
    return view


def market_view(fleet: Fleet) -> dict:
    """Whether agents may trade now (in market time) and when that changes."""
    calendar = calendar_for(fleet.settings.market_hours)
    now = fleet.feeds.clock.now()
    return {
        "hours": calendar.hours,
        "open": calendar.is_open(now),
        "next_change": iso(calendar.next_change(now)),
    }


def fleet_view(fleet: Fleet) -> dict:
    """The fleet at a glance: sizes by phase, health, trading today, data and LLM costs."""
    now = fleet.now()
    agents = fleet.store.agents()
    phases = Counter(a.phase for a in agents)
    live = [a for a in agents if a.phase not in FINAL]
    tokens_in, tokens_out, cost = fleet.llm.usage.llm_day(now.strftime("%Y-%m-%d"))
    return {
        "instance": fleet.settings.instance,
        "runtime": fleet.runtime.name,
        "listed": fleet.reconciler.listed_once,
        "paused": fleet.store.paused(),
        "desired": sum(1 for a in live if a.phase != Phase.RETIRING),
        "running": phases.get(Phase.RUNNING, 0),
        "by_phase": {p.value: phases.get(p.value, 0) for p in Phase},
        "total": len(agents),
        "restarts_last_hour": fleet.store.count_events(FAILURE_KINDS, now - timedelta(hours=1)),
        "orders_today": sum(a.orders_today or 0 for a in live),
        "equity": round(sum(a.equity or 0 for a in live), 2),
        "pnl": round(sum(pnl(a) or 0.0 for a in live), 2),
        "pnl_today": round(sum(pnl_today(a, now) or 0.0 for a in live), 2),
        "market": market_view(fleet),
        "feeds": fleet.feeds.report(),
        "llm_today": {"input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": cost},
    }


def build_report(fleet: Fleet, title: str, since: datetime, now: datetime) -> dict:
    """The fleet between `since` and `now`: orders, P&L by strategy, restarts, spend.

    P&L is each agent's equity now against its equity at `since` (or its first report,
    if it started later); agents retired since `since` count with their last equity."""
    store = fleet.store
    agents = [
        a for a in store.agents() if a.phase not in FINAL or (utc(a.updated_at) or now) >= since
    ]
    baseline = store.equity_at(since)
    strategies: dict[str, dict] = defaultdict(
        lambda: {"agents": 0, "orders_today": 0, "equity": 0.0, "pnl": 0.0}
    )
    for agent in agents:
        row = strategies[agent.strategy]
        row["agents"] += 1
        row["orders_today"] += agent.orders_today or 0
        if agent.equity is not None:
            start = baseline.get(agent.id, agent.starting_equity or agent.equity)
            row["equity"] += agent.equity
            row["pnl"] += agent.equity - start
    for row in strategies.values():
        row["equity"], row["pnl"] = round(row["equity"], 2), round(row["pnl"], 2)
    day = now.strftime("%Y-%m-%d")
    tokens_in, tokens_out, cost = fleet.llm.usage.llm_day(day)
    providers = sorted(set(fleet.feeds.report()["providers"]) - {"simulated"})
    return {
        "title": title,
        "instance": fleet.settings.instance,
        "since": iso(since),
        "generated_at": iso(now),
        "agents": {
            "live": sum(1 for a in agents if a.phase not in FINAL and a.phase != Phase.RETIRING),
            "running": sum(1 for a in agents if a.phase == Phase.RUNNING),
            "spawned": store.count_events(["created"], since),
            "retired": store.count_events([Phase.RETIRED.value], since),
        },
        "restarts": store.count_events(FAILURE_KINDS, since),
        "orders_today": sum(row["orders_today"] for row in strategies.values()),
        "equity": round(sum(row["equity"] for row in strategies.values()), 2),
        "pnl": round(sum(row["pnl"] for row in strategies.values()), 2),
        "by_strategy": dict(sorted(strategies.items())),
        "spend": {
            "llm_usd": round(cost, 4),
            "llm_input_tokens": tokens_in,
            "llm_output_tokens": tokens_out,
            "provider_calls": {p: fleet.llm.usage.provider_calls(p, day) for p in providers},
        },
    }
