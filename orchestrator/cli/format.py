"""Pure formatters: API data in, rich renderables out. Commands only print them.

Whatever an agent or the platform wrote (names, errors, messages, personality values) is
untrusted: it goes through `plain()`, never through rich markup, and its control
characters are shown escaped, so nothing it says can style, break or drive the terminal.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.lifecycle import SETTLEMENTS
from orchestrator.operations.summaries import market_line
from orchestrator.untrusted import visible

_PHASE_STYLE = {
    "running": "green",
    "starting": "cyan",
    "pending": "cyan",
    "provisioning": "cyan",
    "unhealthy": "yellow",
    "backoff": "yellow",
    "crashloop": "bold red",
    "retiring": "yellow",
    "retired": "dim",
    "failed": "red",
}


def plain(value: object) -> Text:
    """Untrusted text as it is: no markup, control characters made visible (`\\x1b`)."""
    return Text(visible(value))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _money(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def _pnl(agent: dict) -> str:
    if agent.get("pnl") is None:
        return "-"
    style = "green" if agent["pnl"] >= 0 else "red"
    return f"[{style}]{agent['pnl']:+,.0f} ({agent['pnl_pct']:+.2f}%)[/]"


def phase_markup(phase: str) -> str:
    """A phase in its colour."""
    return f"[{_PHASE_STYLE.get(phase, 'white')}]{phase}[/]"


def format_agents(agents: list[dict]) -> RenderableType:
    """The `fleet ls` table, then one line per agent with a problem to explain. A NODE
    column appears when the runtime has several machines (Swarm)."""
    table = Table(box=None, header_style="bold")
    numeric = ("RESTARTS", "EQUITY", "P&L", "TODAY", "POS")
    nodes = any(agent.get("node") for agent in agents)
    for column in (
        "NAME",
        "ID",
        "STRATEGY",
        "PHASE",
        *(["NODE"] if nodes else []),
        "UPTIME",
        "RESTARTS",
        "HEARTBEAT",
        "EQUITY",
        "P&L",
        "TODAY",
        "POS",
    ):
        table.add_column(column, no_wrap=True, justify="right" if column in numeric else "left")
    for agent in agents:
        table.add_row(
            plain(agent["name"]),
            agent["id"][:8],
            plain(agent["strategy"]),
            phase_markup(agent["phase"]),
            *([plain(agent.get("node") or "-")] if nodes else []),
            _age(agent.get("uptime_seconds")),
            _count(agent.get("restarts")),
            _age(agent.get("heartbeat_age_seconds")),
            _money(agent.get("equity")),
            _pnl(agent),
            _count(agent.get("orders_today")),
            _count(agent.get("open_positions")),
        )
    problems = [
        Text.assemble((f"{plain(a['name'])}: ", "bold"), plain(problem(a)))
        for a in agents
        if problem(a)
    ]
    return Group(table, *problems) if problems else table


def problem(agent: dict) -> str:
    """What `fleet ls` explains under its table of an agent: why it is not running well,
    or its last error; empty for an agent with nothing to explain."""
    return agent.get("reason") or agent.get("last_error") or ""


def format_agent(agent: dict) -> RenderableType:
    """`fleet show`: identity, health, personality, last error, orders and timeline."""
    facts = Table.grid(padding=(0, 2))
    failures = agent["failures"]
    facts.add_column(style="bold")
    facts.add_column()
    rows = [
        ("agent", plain(f"{agent['name']} ({agent['id']})")),
        ("strategy", plain(agent["strategy"])),
        ("phase", phase_markup(agent["phase"])),
        ("container", plain(agent.get("container_id") or "-")),
        *([("node", plain(agent["node"]))] if agent.get("node") else []),
        ("uptime", _age(agent.get("uptime_seconds"))),
        (
            "restarts",
            f"{agent['restarts']} ({failures} failure{'' if failures == 1 else 's'} in a row)",
        ),
        ("heartbeat", f"{_age(agent.get('heartbeat_age_seconds'))} ago"),
        ("equity", f"{_money(agent.get('equity'))}  P&L {_pnl(agent)}"),
        ("orders today", f"{_count(agent.get('orders_today'))} (market day)"),
        ("positions", _count(agent.get("open_positions"))),
        ("last error", plain(agent.get("last_error") or agent.get("reason") or "-")),
        ("following", plain(", ".join(agent.get("following") or []) or "-")),
        ("followers", plain(", ".join(agent.get("followers") or []) or "-")),
        ("catalysts", plain(agent.get("learned") or "-")),
    ]
    for label, value in rows:
        facts.add_row(label, value)
    parts: list[RenderableType] = [facts]
    personality = agent.get("personality") or {}
    if personality:
        traits = Table(title="personality", title_justify="left", box=None, show_header=False)
        for key in sorted(personality):
            if key not in ("name", "strategy"):
                value = personality[key]
                shown = ", ".join(map(str, value)) if isinstance(value, list) else value
                traits.add_row(plain(key), plain(shown))
        parts.append(traits)
    if agent.get("positions"):
        held = Table(title="open positions", title_justify="left", box=None, header_style="bold")
        events = any(p.get("opened_on") for p in agent["positions"])  # an event trader's
        for column in ("SYMBOL", "QTY", "ENTRY", "LAST", "UNREALISED P&L"):
            held.add_column(column, no_wrap=True, justify="left" if column == "SYMBOL" else "right")
        if events:
            held.add_column("OPENED ON", no_wrap=True)
        for p in agent["positions"]:
            pl = p["unrealized_pl"]
            held.add_row(
                plain(p["symbol"]),
                f"{p['qty']:g}",
                f"{p['avg_price']:,.2f}",
                f"{p['price']:,.2f}",
                f"[{'green' if pl >= 0 else 'red'}]{pl:+,.2f}[/]",
                *([plain(p.get("opened_on") or "-")] if events else []),
            )
        parts.append(held)
    if agent.get("orders"):
        orders = Table(
            title="recent orders (times are market time)",
            title_justify="left",
            box=None,
            header_style="bold",
        )
        for column in ("PLACED", "SIDE", "SYMBOL", "STATUS", "QTY", "PRICE", "WHY"):
            orders.add_column(column, no_wrap=column != "WHY")
        for order in agent["orders"][:20]:
            price = order.get("price")
            orders.add_row(
                plain(order["placed_at"][:19].replace("T", " ")),
                plain(order["side"]),
                plain(order["symbol"]),
                plain(" ".join(filter(None, [order["status"], order.get("reject_reason")]))),
                f"{order['qty']:g}",
                "-" if price is None else f"{price:,.2f}",
                plain(order.get("why") or order.get("rationale") or ""),
            )
        parts.append(orders)
    else:
        parts.append(Text("recent orders: none yet", style="dim"))
    timeline = Table(title="timeline", title_justify="left", box=None, header_style="bold")
    for column in ("AT (UTC)", "EVENT", "MESSAGE"):
        timeline.add_column(column, no_wrap=column != "MESSAGE")
    for event in agent.get("events", [])[-20:]:
        timeline.add_row(event["at"][:19], plain(event["kind"]), plain(event["message"]))
    parts.append(timeline)
    return Group(*parts)


def format_decisions(decisions: list[dict]) -> RenderableType:
    """`fleet show AGENT --why`: the latest decisions, newest first, in words."""
    if not decisions:
        return Text("no decision records yet", style="dim")
    lines: list[RenderableType] = []
    for decision in decisions:
        lines += [plain(line) for line in decision["explanation"]] + [Text("")]
    return Group(*lines[:-1])


def format_why(answer: dict) -> RenderableType:
    """`fleet why ORDER`: the order, and the decision that sent it."""
    order = answer["order"]
    head = plain(
        f"{answer['agent']}: {order['side']} {order['qty']:g} {order['symbol']}, "
        f"{order['status']} at {order['placed_at'][:19].replace('T', ' ')} (market time), "
        f"client order id {order['client_order_id']}"
    )
    if answer["decision"] is None:  # an agent's order, or the orchestrator's closing sale
        said = [plain(f"reason: {order['rationale']}")] if order.get("rationale") else []
        missing = "no decision record: not an agent's decision, or past retention"
        return Group(head, *said, Text(missing, style="dim"))
    return Group(head, *(plain(line) for line in answer["decision"]["explanation"]))


def format_spawned(result: dict) -> Text:
    """One line about a spawn."""
    names = ", ".join(a["name"] for a in result["agents"])
    verb = "spawned" if result["created"] else "already spawned (replayed)"
    return plain(f"{verb} {len(result['agents'])} agent(s): {names}")


def format_scaled(result: dict) -> Text:
    """One line about a scale request."""
    spawned, retiring = result["spawned"], result["retiring"]
    if spawned:
        names = ", ".join(a["name"] for a in spawned)
        return plain(f"scaling to {result['size']}: spawned {len(spawned)} agent(s): {names}")
    if retiring:
        names = ", ".join(a["name"] for a in retiring)
        return plain(f"scaling to {result['size']}: retiring {len(retiring)} agent(s): {names}")
    return plain(f"the fleet already has {result['size']} agent(s)")


# Timeline entries that say what became of a retired agent's positions.
def format_retired(agent: dict) -> Text:
    """One line about a retired agent and what became of its positions."""
    settled = [e["message"] for e in agent.get("events", []) if e["kind"] in SETTLEMENTS]
    return plain(f"retired {agent['name']}" + (f": {settled[-1]}" if settled else ""))


def format_settings(values: dict[str, object]) -> str:
    """Settings as `NAME=value` lines, as a `.env` file holds them (control characters made
    visible: a value is text from the environment or a file)."""
    return "\n".join(
        f"{name}={'' if value is None else visible(value)}" for name, value in values.items()
    )


def format_personalities(fleet: list[dict]) -> Table:
    """The `fleet personalities sample` table."""
    table = Table(box=None, header_style="bold")
    for column in (
        "NAME",
        "STRATEGY",
        "RISK",
        "FREQUENCY",
        "NEWS",
        "CONTRA",
        "CAP",
        "SIZE",
        "STOP",
        "SECTORS",
    ):
        table.add_column(column, no_wrap=column != "SECTORS")
    for p in fleet:
        table.add_row(
            p["name"],
            p["strategy"],
            f"{p['risk_tolerance']:.2f}",
            p["trading_frequency"],
            f"{p['news_sensitivity']:.2f}",
            f"{p['contrarian_tendency']:.2f}",
            p["market_cap_bias"],
            f"{p['position_fraction']:.1%}",
            f"{p['stop_loss']:.1%}",
            ", ".join(p["sector_preferences"]),
        )
    return table


def format_simulation(by_strategy: dict[str, dict], social: dict, days: int, steps: int) -> Table:
    """The `fleet simulate` summary, one row per strategy, and the social layer's figures."""
    caption = (
        f"social: {social['follows']} follows, the most followed has {social['most_followed']}, "
        f"the median {social['median_followers']}, the top tenth {social['top_decile_share']:.0%}"
        f" of all; {social['decisions_with_social_input']} of {social['decisions']} decisions"
        " saw followed accounts' trades"
    )
    table = Table(
        title=f"{days} simulated days, {steps} steps",
        caption=caption,
        header_style="bold",
        box=None,
    )
    for column in ("STRATEGY", "AGENTS", "ORDERS", "MEAN P&L", "BEST", "WORST"):
        table.add_column(column, justify="left" if column == "STRATEGY" else "right")
    for name, row in by_strategy.items():
        table.add_row(
            name,
            str(row["agents"]),
            str(row["orders"]),
            f"{row['mean_pnl_pct']:+.2f}%",
            f"{row['best_pnl_pct']:+.2f}%",
            f"{row['worst_pnl_pct']:+.2f}%",
        )
    return table


def format_dashboard(
    summary: dict, agents: list[dict], events: list[dict], hidden: int = 0
) -> RenderableType:
    """`fleet dashboard`: the fleet summary, the agents (problems first; `hidden` more
    that did not fit), latest events."""
    from rich.panel import Panel

    feeds = summary.get("feeds") or {}
    ratio = feeds.get("cache_hit_ratio")
    quota = [
        f"{name} {row['quota_left_today']} left"
        for name, row in (feeds.get("providers") or {}).items()
        if row.get("quota_left_today") is not None
    ]
    busy = [
        f"{phase_markup(phase)} {count}"
        for phase, count in summary["by_phase"].items()
        if count and phase not in ("running", "retired")
    ]
    pnl, today = summary["pnl"], summary["pnl_today"]
    platform = summary.get("platform") or {"reachable": True}
    lines = [
        f"[bold]{summary['instance']}[/] on {summary['runtime']}   "
        + market_line(summary["market"])
        + ("   [bold white on red] PAUSED [/]" if summary["paused"] else "")
        + (
            ""
            if platform["reachable"]
            else f"   [bold white on red] PLATFORM UNREACHABLE since "
            f"{platform['down_since'][11:19]} UTC [/]"
        ),
        f"desired {summary['desired']}   running [green]{summary['running']}[/]   "
        + "   ".join(busy),
        f"restarts (1 h) {summary['restarts_last_hour']}   "
        f"orders today ({summary['market_day']}) {summary['orders_today']}   "
        f"P&L today [{'green' if today >= 0 else 'red'}]{today:+,.0f}[/]   "
        f"P&L [{'green' if pnl >= 0 else 'red'}]{pnl:+,.0f}[/]",
        f"cache hits {'-' if ratio is None else f'{ratio:.0%}'}   "
        + ("   ".join(quota) or "no upstream quota")
        + f"   LLM today ${summary['llm_today']['cost_usd']:.2f}",
    ]
    timeline = Table(box=None, show_header=False)
    for event in events[:8]:
        timeline.add_row(
            event["at"][11:19], plain(event["agent"]), plain(event["kind"]), plain(event["message"])
        )
    more = f"{hidden:,} more not shown: `fleet ls` lists every agent" if hidden > 0 else ""
    return Group(
        Panel("\n".join(lines), title="agent-fleet", title_align="left"),
        format_agents(agents),
        *([Text(more, style="dim")] if more else []),
        Panel(timeline, title="latest events (UTC)", title_align="left"),
    )


def _when(moment: str | None) -> str:
    return moment[:16].replace("T", " ") if moment else "-"


def format_added(schedule: dict) -> str:
    """What `fleet schedule ramp|report` did."""
    state = "added" if schedule["created"] else "already scheduled"
    upcoming = _when(schedule["next_run_at"])
    return f"{state} {schedule['id']}: {schedule['plan']}; next run {upcoming} UTC"


def format_schedules(schedules: list[dict]) -> RenderableType:
    """The `fleet schedule ls` table (times in UTC)."""
    if not schedules:
        return Text("no schedules (add one with `fleet schedule ramp` or `fleet schedule report`)")
    table = Table(box=None, header_style="bold")
    for column in ("ID", "PLAN", "RUNS", "LAST RUN (UTC)", "RESULT", "NEXT RUN (UTC)"):
        table.add_column(column, justify="right" if column == "RUNS" else "left")
    for s in schedules:
        upcoming = "done" if s["done_at"] else _when(s["next_run_at"])
        table.add_row(
            s["id"],
            s["plan"],
            str(s["runs"]),
            _when(s["last_run_at"]),
            s["last_result"] or "-",
            upcoming,
        )
    return table


def format_rollouts(status: dict) -> RenderableType | str:
    """The latest rollouts, newest first: state, images and how far each got."""
    if not status["rollouts"]:
        return "no rollout yet: the daemon records the agents' image on its first round"
    table = Table(box=None, header_style="bold")
    for column in ("ID", "STATE", "FROM", "TO", "ADMITTED", "STARTED", "REASON"):
        table.add_column(column, no_wrap=column != "REASON")
    for rollout in status["rollouts"]:
        same = rollout["old_image"] == rollout["new_image"]
        table.add_row(
            str(rollout["id"]),
            rollout["state"],
            "-" if same else rollout["old_image"],
            rollout["new_image"],
            "-" if same else f"{rollout['admitted']}/{status['fleet']}",
            (rollout["started_at"] or "")[:19],
            plain(rollout["reason"] or ""),
        )
    return table
