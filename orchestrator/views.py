"""What the operator surfaces show, as plain data: agents, timelines and the fleet summary.

The operator API returns these as JSON, the web dashboard renders them, the terminal
dashboard reads them through the API and `/metrics` exports them: one definition of
"P&L", "uptime" or "problems first" for all four. No token or credential is ever part
of a view.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

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
        "feeds": fleet.feeds.report(),
        "llm_today": {"input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": cost},
    }
