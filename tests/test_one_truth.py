"""Every surface tells the same truth: orders today, P&L and positions read at the same
moment from the CLI, the terminal dashboard (in tmux), the web overview and `/metrics`
are equal. A real daemon, a real `fleet sandbox`, agents trading through the relay."""

import json
import re
import shlex

import httpx

from orchestrator.tools.harness import FLEET, wait_until
from tests.conftest import CONTROLLER_KEY
from tests.trader import Trader


def metrics(daemon) -> dict[str, float]:
    """Each sample of `/metrics`, by its name and labels."""
    text = httpx.get(f"{daemon.url}/metrics").text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_orders_today_pnl_and_positions_agree_on_every_surface(make_daemon, fleet_sandbox, tmux):
    session, run = tmux
    daemon = make_daemon(
        "process",
        FLEET_PLATFORM_URL=fleet_sandbox,
        FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
        FLEET_AGENT_CYCLE_SECONDS="300",  # the figures hold still while they are read
    )
    assert daemon.fleet("spawn", "2", "--wait").returncode == 0
    # each agent's first figures are in; its next beat is a cycle (300 s) away
    first, second = daemon.wait_for(
        lambda agents: all(a["equity"] is not None for a in agents), "the agents' own figures"
    )
    for agent, buys, equity in ((first, ("AAPL", "XOM"), 100_500.0), (second, ("MSFT",), 99_800.0)):
        trader = Trader(daemon, agent)
        for n, symbol in enumerate(buys):
            body = {"client_order_id": f"truth-{n}", "symbol": symbol, "side": "buy", "qty": 1}
            assert trader.call("POST", "api/trading/submit", json=body).status_code == 201
        assert trader.call("GET", "api/trading/portfolio").status_code == 200
        trader.beat(equity)
    # a beat is answered at once and written with the next batch
    daemon.wait_for(
        lambda agents: sorted(a["equity"] for a in agents) == [99_800.0, 100_500.0],
        "the beats in the store",
    )

    # The CLI.
    listed = {a["name"]: a for a in json.loads(daemon.fleet("ls", "--json").stdout)}
    fleet = daemon.api("GET", "/v1/fleet").json()
    day, orders, pnl = fleet["market_day"], fleet["orders_today"], fleet["pnl"]
    positions = sum(a["open_positions"] for a in listed.values())
    assert orders == sum(a["orders_today"] for a in listed.values()) >= 3
    assert pnl == round(sum(a["pnl"] for a in listed.values()), 2)
    assert positions >= 3  # ours, and whatever the agents bought on their own
    table = daemon.fleet("ls").stdout
    for agent in listed.values():
        row = next(line for line in table.splitlines() if agent["name"] in line)
        assert f"{agent['pnl']:+,.0f}" in row and f" {agent['orders_today']} " in row

    # The terminal dashboard, in a real pseudo-terminal.
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in daemon.env.items() if k.startswith("FLEET_"))
    run(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "200",
        "-y",
        "45",
        f"env {env} {shlex.join(FLEET)} dashboard --interval 0.5",
    )
    header = f"orders today ({day}) {orders}"

    def showing() -> str:
        shown = run("capture-pane", "-p", "-t", session)
        return shown if header in shown else ""

    screen = wait_until(showing, "the dashboard's summary")
    assert re.search(rf"P&L {re.escape(f'{pnl:+,.0f}')}\b", screen), screen

    # The web overview.
    with httpx.Client(base_url=daemon.url) as web:
        web.post("/login", data={"token": daemon.token, "next": "/"})
        page = web.get("/fragments/overview").text
    assert re.search(rf'id="orders-today">{orders}<', page)
    assert f"{pnl:+,.0f}" in page
    shown = re.findall(r'<td class="num">(\d+)</td>\s*<td class="msg', page)
    assert sum(map(int, shown)) == positions  # the Positions column, row by row

    # /metrics.
    sampled = metrics(daemon)
    assert sampled[f'fleet_orders_today{{market_day="{day}"}}'] == orders

    def total(name: str) -> float:
        return round(sum(v for k, v in sampled.items() if k.startswith(name)), 2)

    assert total("fleet_agent_pnl_dollars") == pnl
    assert total("fleet_agent_open_positions") == positions
