"""Pure formatters: API data in, rich renderables out. Commands only print them."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

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


def format_agents(agents: list[dict]) -> RenderableType:
    """The `fleet ls` table, then one line per agent with a problem to explain."""
    table = Table(box=None, header_style="bold")
    for column in (
        "NAME",
        "ID",
        "STRATEGY",
        "PHASE",
        "RESTARTS",
        "HEARTBEAT",
        "EQUITY",
        "POS",
        "ORDERS",
        "CONTAINER",
    ):
        table.add_column(
            column,
            no_wrap=True,
            justify="right" if column in ("RESTARTS", "EQUITY", "POS", "ORDERS") else "left",
        )
    for agent in agents:
        phase = agent["phase"]
        table.add_row(
            agent["name"],
            agent["id"][:8],
            agent["strategy"],
            f"[{_PHASE_STYLE.get(phase, 'white')}]{phase}[/]",
            _count(agent.get("restarts")),
            _age(agent.get("heartbeat_age_seconds")),
            "-" if agent.get("equity") is None else f"{agent['equity']:,.0f}",
            _count(agent.get("open_positions")),
            _count(agent.get("orders_submitted")),
            (agent.get("container_id") or "-")[:12],
        )
    problems = [
        Text.assemble((f"{a['name']}: ", "bold"), a.get("reason") or a.get("last_error") or "")
        for a in agents
        if a.get("reason") or a.get("last_error")
    ]
    return Group(table, *problems) if problems else table


def format_spawned(result: dict) -> str:
    """One line about a spawn."""
    names = ", ".join(a["name"] for a in result["agents"])
    verb = "spawned" if result["created"] else "already spawned (replayed)"
    return f"{verb} {len(result['agents'])} agent(s): {names}"


def format_scaled(result: dict) -> str:
    """One line about a scale request."""
    spawned, retiring = result["spawned"], result["retiring"]
    if spawned:
        names = ", ".join(a["name"] for a in spawned)
        return f"scaling to {result['size']}: spawned {len(spawned)} agent(s): {names}"
    if retiring:
        names = ", ".join(a["name"] for a in retiring)
        return f"scaling to {result['size']}: retiring {len(retiring)} agent(s): {names}"
    return f"the fleet already has {result['size']} agent(s)"


# Timeline entries that say what became of a retired agent's positions.
_SETTLEMENT = ("flattened", "flatten_incomplete", "positions_left")


def format_retired(agent: dict) -> str:
    """One line about a retired agent and what became of its positions."""
    settled = [e["message"] for e in agent.get("events", []) if e["kind"] in _SETTLEMENT]
    return f"retired {agent['name']}" + (f": {settled[-1]}" if settled else "")


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


def format_simulation(by_strategy: dict[str, dict], days: int, steps: int) -> Table:
    """The `fleet simulate` summary, one row per strategy."""
    table = Table(title=f"{days} simulated days, {steps} steps", header_style="bold", box=None)
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
