"""Fleet data as plain text, for webhook messages, terminals and pages alike: the fleet
report, the market's state, and the order problems are listed in. Imports nothing heavy,
so the CLI stays quick."""

from __future__ import annotations

from datetime import datetime

from orchestrator.lifecycle import Phase

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


def problems_first(views: list[dict]) -> list[dict]:
    """Agents in crash loops, failed or unhealthy first; in each phase, those with a
    problem to explain (a reason, as "not placed: …", or a last error); then by name."""
    return sorted(
        views,
        key=lambda v: (
            _SEVERITY.get(Phase(v["phase"]), 9),
            not (v["reason"] or v["last_error"]),
            v["name"],
        ),
    )


def market_line(market: dict) -> str:
    """The market's state in a few words: open, closed, and until when (market time)."""
    if market["next_change"] is None:
        return "market always open" if market["open"] else "market closed"
    until = datetime.fromisoformat(market["next_change"]).strftime("%a %H:%M UTC")
    return f"market open, closes {until}" if market["open"] else f"market closed, opens {until}"


def _money(amount: float) -> str:
    return f"{'+' if amount >= 0 else '-'}${abs(amount):,.2f}"


def _counted(count: int, thing: str) -> str:
    return f"{count:,} {thing}{'' if count == 1 else 's'}"


def format_report(report: dict) -> str:
    """The report as a few lines of plain text (the webhook's message, the CLI's output)."""
    agents, spend = report["agents"], report["spend"]
    lines = [
        f"{report['title']}: since {report['since'][:16].replace('T', ' ')} UTC",
        f"agents: {agents['live']} live, {agents['running']} running; "
        f"{agents['spawned']} spawned, {agents['retired']} retired; "
        f"{_counted(report['restarts'], 'restart')}",
        f"orders today ({report['market_day']}, market day): {report['orders_today']}; "
        f"P&L {_money(report['pnl'])} on ${report['equity']:,.2f} equity",
    ]
    for strategy, row in report["by_strategy"].items():
        retired = f" (+{row['retired']} retired)" if row["retired"] else ""
        lines.append(
            f"  {strategy}: {_counted(row['agents'], 'agent')}{retired}, "
            f"{_counted(row['orders_today'], 'order')}, "
            f"P&L {_money(row['pnl'])}"
        )
    calls = ", ".join(f"{p} {_counted(n, 'call')}" for p, n in spend["provider_calls"].items())
    lines.append(
        f"spend: LLM ${spend['llm_usd']:,.2f} ({spend['llm_input_tokens']:,} in / "
        f"{spend['llm_output_tokens']:,} out tokens)" + (f"; {calls}" if calls else "")
    )
    return "\n".join(lines)
