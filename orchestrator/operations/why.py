"""Why an agent traded: its decision records told in plain words, and the follow graph.

Records are the agents' own words (untrusted): everything here returns plain strings and
plain data, which every surface draws as text, never as markup.
"""

from __future__ import annotations

from collections import Counter

from orchestrator.lifecycle import NOT_RETIRED
from orchestrator.state.decisions import Decision
from orchestrator.state.follows import FollowBook
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent

MAX_LISTED = 8  # headlines or trades named per line


def _score(value: object) -> str:
    return f"{value:+.2f}" if isinstance(value, int | float) else "?"


def inputs_line(record: dict) -> tuple[str, str]:
    """The headlines and the social signal a decision saw, one line each."""
    given = record.get("inputs") or {}
    headlines = [h for h in given.get("headlines") or [] if isinstance(h, dict)]
    social = [t for t in given.get("social") or [] if isinstance(t, dict)]
    news = ", ".join(
        f"{h.get('symbol')} {_score(h.get('score'))} [{h.get('id')}]"
        for h in headlines[:MAX_LISTED]
    )
    crowd = ", ".join(
        f"{t.get('followee')} {t.get('side')} {t.get('symbol')}" for t in social[:MAX_LISTED]
    )
    return (
        f"headlines: {news}{_more(headlines)}" if headlines else "headlines: none",
        f"social: {crowd}{_more(social)}" if social else "social: none",
    )


def _more(items: list) -> str:
    return f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""


def explain(decision: Decision) -> list[str]:
    """A decision, line by line: when and by what, what it saw, proposed, had clamped or
    dropped, and sent."""
    r = decision.record
    orders = r.get("orders") or []
    lines = [
        f"cycle {decision.cycle} at {decision.decided_at:%Y-%m-%d %H:%M} (market time): "
        f"{decision.strategy} v{r.get('strategy_version')}, "
        f"{len(orders)} order{'s' if len(orders) != 1 else ''}",
        *(f"  {line}" for line in inputs_line(r)),
    ]
    for p in r.get("proposals") or []:
        lines.append(
            f"  proposed {p.get('side')} {p.get('symbol')}, conviction "
            f"{_score(p.get('conviction'))}: {p.get('rationale')}"
        )
    for kind in ("clamped", "dropped"):
        for c in r.get(kind) or []:
            lines.append(f"  rails {kind} {c.get('side')} {c.get('symbol')}: {c.get('reason')}")
    for o in orders:
        lines.append(
            f"  order {o.get('side')} {o.get('qty')} {o.get('symbol')} ({o.get('client_order_id')})"
        )
    if r.get("error"):
        lines.append(f"  error: {r['error']}")
    return lines


def reason(record: dict, client_order_id: str) -> str:
    """One line on why this order was sent: its proposal's rationale, what the rails
    changed and whether followed accounts' trades were in view."""
    orders = [o for o in record.get("orders") or [] if o.get("client_order_id") == client_order_id]
    if not orders:
        return ""
    symbol, side = orders[0].get("symbol"), orders[0].get("side")
    parts = [
        str(p.get("rationale"))
        for p in record.get("proposals") or []
        if p.get("symbol") == symbol and p.get("side") == side
    ]
    parts += [
        f"rails: {c.get('reason')}"
        for c in record.get("clamped") or []
        if c.get("symbol") == symbol and c.get("side") == side
    ]
    social = [
        t for t in (record.get("inputs") or {}).get("social") or [] if t.get("symbol") == symbol
    ]
    if social:
        parts.append(f"{len(social)} followed trade{'s' if len(social) != 1 else ''} in {symbol}")
    return "; ".join(parts)


def circles(store: Store, agent: Agent) -> dict[str, list[str]]:
    """Whom the agent follows and who follows it, by name (an account outside the fleet
    by its platform id)."""
    following, followers = FollowBook(store).around(agent.id, agent.platform_user_id)
    return {"following": following, "followers": followers}


def graph(store: Store) -> dict:
    """The fleet's follow graph: nodes by name with their followers, edges between
    names, the most followed first; retired agents have left it."""
    agents = store.agents(NOT_RETIRED)
    by_user = {a.platform_user_id: a.name for a in agents if a.platform_user_id}
    by_id = {a.id: a.name for a in agents}
    edges = [
        (by_id[a], by_user[f]) for a, f in FollowBook(store).edges() if a in by_id and f in by_user
    ]
    followers = Counter(followee for _, followee in edges)
    nodes = sorted(by_id.values(), key=lambda n: (-followers[n], n))
    return {
        "nodes": [{"name": n, "followers": followers[n]} for n in nodes],
        "edges": [{"from": a, "to": b} for a, b in sorted(edges)],
    }
