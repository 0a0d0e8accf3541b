"""The fleet report: what happened between two moments, for the daily schedule and
`fleet report --now`. Reads the store only; sends nothing (the scheduler queues it)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime

from orchestrator.lifecycle import FAILURES, FINAL, EventKind, Phase
from orchestrator.operations.views import iso
from orchestrator.state.equity import EquityBook
from orchestrator.state.store import Store
from orchestrator.state.usage import UsageLedger


def build_report(
    store: Store,
    usage: UsageLedger,
    providers: Iterable[str],
    instance: str,
    orders_today: Callable[[], tuple[str, Counter[str]]],
    title: str,
    since: datetime,
    now: datetime,
) -> dict:
    """The fleet between `since` and `now`: orders placed on the market's trading day,
    P&L by strategy, restarts, spend, and the upstream calls to each of `providers` today.

    P&L is each agent's equity now against its equity at `since` (or its first report,
    if it started later). Agents retired since `since` count in their strategy's P&L with
    their last equity, and are counted apart from the live ones."""
    agents = store.present(since)
    baseline = EquityBook(store).at(since)
    market_day, placed = orders_today()
    strategies: dict[str, dict] = defaultdict(
        lambda: {"agents": 0, "retired": 0, "orders_today": 0, "equity": 0.0, "pnl": 0.0}
    )
    for agent in agents:
        row = strategies[agent.strategy]
        row["retired" if agent.phase in FINAL else "agents"] += 1
        row["orders_today"] += placed[agent.id]
        if agent.equity is not None:
            start = baseline.get(agent.id, agent.starting_equity or agent.equity)
            row["equity"] += agent.equity
            row["pnl"] += agent.equity - start
    for row in strategies.values():
        row["equity"], row["pnl"] = round(row["equity"], 2), round(row["pnl"], 2)
    day = now.strftime("%Y-%m-%d")
    tokens_in, tokens_out, cost = usage.llm_day(day)
    return {
        "title": title,
        "instance": instance,
        "since": iso(since),
        "generated_at": iso(now),
        "agents": {
            "live": sum(1 for a in agents if a.phase not in FINAL and a.phase != Phase.RETIRING),
            "running": sum(1 for a in agents if a.phase == Phase.RUNNING),
            "spawned": store.count_events([EventKind.CREATED], since),
            "retired": store.count_events([EventKind.RETIRED], since),
        },
        "restarts": store.count_events(FAILURES, since),
        "market_day": market_day,
        "orders_today": sum(row["orders_today"] for row in strategies.values()),
        "equity": round(sum(row["equity"] for row in strategies.values()), 2),
        "pnl": round(sum(row["pnl"] for row in strategies.values()), 2),
        "by_strategy": dict(sorted(strategies.items())),
        "spend": {
            "llm_usd": round(cost, 4),
            "llm_input_tokens": tokens_in,
            "llm_output_tokens": tokens_out,
            "provider_calls": {p: usage.provider_calls(p, day) for p in sorted(set(providers))},
        },
    }
