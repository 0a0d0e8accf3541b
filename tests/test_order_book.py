"""The fleet's own order book: what passes through the relay is kept, counted once for
"orders today" on every surface, outlives the agent's account, and raises the trading
alarms once per episode; while the fleet is paused, no order passes. A real daemon
(process runtime), a real `fleet sandbox`, and a webhook on 127.0.0.1."""

import json
import re

import httpx

from orchestrator.tools.harness import serve, wait_until
from orchestrator.tools.scripted import ScriptedApp
from tests.conftest import CONTROLLER_KEY, raw_post
from tests.trader import Trader


def metric(daemon, name: str) -> float:
    text = httpx.get(f"{daemon.url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_orders_pass_the_relay_into_the_book_and_outlive_the_account(make_daemon, fleet_sandbox):
    daemon = make_daemon(
        "process",
        FLEET_PLATFORM_URL=fleet_sandbox,
        FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
        FLEET_AGENT_CYCLE_SECONDS="300",  # the agent's own trading stays out of the way
    )
    assert daemon.fleet("spawn", "1", "--wait").returncode == 0
    (agent,) = daemon.agents()
    trader = Trader(daemon, agent)
    first = trader.submit("book-1", 3, "earnings beat, sentiment +0.8")
    again = trader.submit("book-1", 3, "earnings beat, sentiment +0.8")  # a retry: replayed
    assert first["order_id"] == again["order_id"]
    assert daemon.fleet("pause").returncode == 0  # the relay refuses from this moment on
    body = {"client_order_id": "book-paused", "symbol": "AAPL", "side": "buy", "qty": 1}
    refused = trader.call("POST", "api/trading/submit", json=body)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "fleet_paused"
    sent = [o["client_order_id"] for o in trader.call("GET", "api/trading/orders").json()]
    assert "book-1" in sent and "book-paused" not in sent  # it never reached the platform
    assert daemon.fleet("resume").returncode == 0
    trader.submit("book-2", 1, "second <b>look</b>")
    assert trader.call("GET", "api/trading/portfolio").status_code == 200
    token, submit = daemon.agent_token(agent["id"]), "/v1/platform/api/trading/submit"
    raw_post(daemon.url, submit, token, 100, 10, answer=False)  # gone half-way through a body

    def shown() -> dict | None:
        detail = json.loads(daemon.fleet("show", agent["name"], "--json").stdout)
        return detail if any(p["symbol"] == "AAPL" for p in detail["positions"]) else None

    detail = wait_until(shown, "the listed positions in the store")  # written in batches
    mine = [o for o in detail["orders"] if o["symbol"] == "AAPL" and o["rationale"]]
    assert [o["rationale"] for o in mine][:2] == [
        "second <b>look</b>",
        "earnings beat, sentiment +0.8",
    ]
    assert all(o["status"] == "filled" and o["price"] > 0 for o in mine)
    (held,) = [p for p in detail["positions"] if p["symbol"] == "AAPL"]
    assert held["qty"] >= 4 and held["avg_price"] > 0

    # One count of orders today, the same on every surface.
    summary = daemon.api("GET", "/v1/fleet").json()
    listed = json.loads(daemon.fleet("ls", "--json").stdout)
    day, count = summary["market_day"], summary["orders_today"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", day) and count == len(detail["orders"]) >= 2
    assert listed[0]["orders_today"] == detail["orders_today"] == count
    assert metric(daemon, f'fleet_orders_today{{market_day="{day}"}}') == count
    filled = f'fleet_orders_total{{status="filled",strategy="{agent["strategy"]}"}}'
    assert metric(daemon, filled) == sum(o["status"] == "filled" for o in detail["orders"])
    assert f"orders today ({day}, market day): {count}" in daemon.fleet("report", "--now").stdout

    # Retired with its positions sold, its account disabled: the history stays.
    retired = daemon.fleet("retire", agent["name"], "--flatten")
    assert retired.returncode == 0, retired.stderr
    after = json.loads(daemon.fleet("show", agent["name"], "--json").stdout)
    assert after["phase"] == "retired"
    kept = {o["rationale"] for o in after["orders"]}
    assert {"earnings beat, sentiment +0.8", "second <b>look</b>"} <= kept
    (closing,) = [o for o in after["orders"] if o["symbol"] == "AAPL" and o["side"] == "sell"]
    assert closing["qty"] == held["qty"] and closing["rationale"].startswith("closing sale")
    # No decision sent these two: each says its reason, the second as it is written.
    for order, said in (
        (closing, "closing sale (retire --flatten)"),
        (mine[0], "second <b>look</b>"),
    ):
        why = daemon.fleet("why", order["client_order_id"])
        assert f"reason: {said}\nno decision record: not an agent's decision" in why.stdout
    assert "Traceback" not in daemon.log_path.read_text()  # the hang-up: nobody to answer


def test_trading_alarms_reach_the_webhook_once_per_episode(make_daemon, fleet_sandbox):
    hook = ScriptedApp().on("/hook", (200, {"ok": True}, {}))
    with serve(hook) as url:
        daemon = make_daemon(
            "process",
            FLEET_PLATFORM_URL=fleet_sandbox,
            FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
            FLEET_ALERT_WEBHOOK_URL=f"{url}/hook",
            FLEET_AGENT_CYCLE_SECONDS="300",
            FLEET_RISK_MIN_EQUITY="50000",
            FLEET_ALERT_DRAWDOWN="0.3",
            FLEET_ALERT_REJECTIONS="3",
        )
        assert daemon.fleet("spawn", "1", "--wait").returncode == 0
        (agent,) = daemon.agents()
        trader = Trader(daemon, agent)

        def alerts() -> list[str]:
            texts = [json.loads(s.body)["text"] for s in hook.seen if s.path == "/hook"]
            return [t for t in texts if agent["name"] in t]

        for equity in (100_000.0, 60_000.0, 40_000.0, 39_000.0, 38_000.0):
            trader.beat(equity)  # 40 %, then more, below the peak; under the floor
        wait_until(lambda: len(alerts()) >= 2, "the floor and drawdown alerts")
        floor = [t for t in alerts() if "under its equity floor" in t]
        drawdown = [t for t in alerts() if "below its peak equity" in t]
        assert len(floor) == len(drawdown) == 1  # once for the episode, not per heartbeat
        assert (
            "floor of $50,000.00: $40,000.00" in floor[0] and "40.0% below" in drawdown[0]
        )  # as it began

        trader.beat(100_000.0)  # the episode ends...
        trader.beat(45_000.0)  # ...and a new one begins
        wait_until(lambda: len(alerts()) >= 4, "the second episode's alerts")

        for n in range(5):  # far beyond its cash: rejected, three in a row and more
            assert trader.submit(f"too-big-{n}", 10_000_000, "all in")["status"] == "rejected"
        wait_until(lambda: any("were all rejected" in t for t in alerts()), "the rejections")
        assert sum("were all rejected" in t for t in alerts()) == 1
        assert len(alerts()) == 5


def test_fleet_curves_count_each_agent_from_its_creation_until_it_leaves():
    from datetime import UTC, datetime, timedelta

    from orchestrator.operations.views import fleet_curves
    from orchestrator.state.tables import Agent

    t0 = datetime(2026, 3, 2, 15, tzinfo=UTC)

    def agent(agent_id: str, strategy: str, start: float, left: datetime | None = None) -> Agent:
        return Agent(
            id=agent_id,
            name=agent_id,
            strategy=strategy,
            phase="running" if left is None else "retired",
            created_at=t0,
            updated_at=left or t0,
            starting_equity=start,
        )

    samples = [
        ("a", t0, 100_000.0),
        ("c", t0, 60_000.0),
        ("b", t0 + timedelta(seconds=5), 45_000.0),  # b has not reported before this
        ("a", t0 + timedelta(seconds=10), 110_000.0),
        ("a", t0 + timedelta(seconds=20), 90_000.0),
    ]
    agents = [
        agent("a", "x", 100_000),
        agent("b", "y", 50_000),
        agent("c", "y", 50_000, left=t0 + timedelta(seconds=15)),  # retired: gone after
    ]
    curves = fleet_curves(samples, agents, steps=4)
    assert [v for _, v in curves.equity] == [210_000, 205_000, 215_000, 215_000, 135_000]
    assert [v for _, v in curves.pnl_by_strategy["x"]] == [0, 0, 10_000, 10_000, -10_000]
    assert [v for _, v in curves.pnl_by_strategy["y"]] == [10_000, 5_000, 5_000, 5_000, -5_000]
    # a's fall from 110,000 to 90,000, not c's leaving
    assert curves.max_drawdown == curves.drawdown == round(20_000 / 215_000, 4)
