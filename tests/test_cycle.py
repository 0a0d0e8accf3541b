"""The agent's trading cycle against a real sandbox platform, with gateway answers scripted.

The gateway is the orchestrator's own service, so scripting it here lets each test hand
the agent exactly the data it needs, including broken data.
"""

import math
from datetime import UTC, datetime, timedelta

import pytest

from agent_runtime.account import REPORT_EVERY, STILL_EVERY, AccountLink
from agent_runtime.contract import Bootstrap, ClockSpec, PlatformAccess, Schedule
from agent_runtime.cycle import Memory, Trader, client_order_id, opened_at
from agent_runtime.gateway import GatewayClient
from feeds.clock import DEFAULT_ANCHOR
from orchestrator.settings import Settings
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp
from platform_client import Order as Placed
from platform_client import PlatformClient
from sandbox.app import create_sandbox_app
from tests.conftest import CONTROLLER_KEY, sandbox_config

NOW = datetime.now(UTC)
UNIVERSE = {
    "symbols": [
        {"symbol": "MRNA", "name": "Moderna", "sector": "healthcare", "market_cap": "mid"},
        {"symbol": "XOM", "name": "Exxon", "sector": "energy", "market_cap": "large"},
    ]
}
FDA = {
    "items": [
        {
            "id": "n1",
            "published_at": NOW.isoformat(),
            "symbols": ["MRNA"],
            "headline": "FDA approves Moderna drug",
            "summary": "",
            "source": "wire",
            "sentiment": {"score": 0.8, "label": "positive", "relevance": 1.0},
            "event_type": "fda",
        }
    ],
    "stale": False,
}
QUOTES = {
    "quotes": [
        {"symbol": "MRNA", "price": 105.0, "as_of": NOW.isoformat()},
        {"symbol": "XOM", "price": 115.0, "as_of": NOW.isoformat()},
    ]
}
PERSONALITY = {
    "name": "keen-heron",
    "strategy": "event_driven",
    "news_weight": 0.9,
    "holding_days": 1,
    "sector_preferences": ["healthcare"],
    "market_cap_bias": "mixed",
    "position_fraction": 0.1,
    "cycle_seconds": 60,
}


@pytest.fixture
def world(tmp_path):
    """A live sandbox with one agent account, and a scriptable gateway."""
    gateway = ScriptedApp()
    gateway.on("/v1/feed/universe", (200, UNIVERSE, {}))
    gateway.on("/v1/feed/quotes", (200, QUOTES, {}))
    gateway.on("/v1/feed/news", (200, FDA, {}))
    sandbox = create_sandbox_app(sandbox_config(f"sqlite:///{tmp_path / 'p.db'}"))
    with serve(sandbox) as platform_url, serve(gateway) as gateway_url:
        creds = PlatformClient(platform_url, controller_key=CONTROLLER_KEY).create_agent(
            "cycle-agent", "Keen Heron"
        )
        platform = PlatformAccess(creds.username, creds.password)
        yield gateway, gateway_url, platform, platform_url


def trader(world_, **boot_changes):
    _, gateway_url, platform, platform_url = world_
    account = AccountLink(platform, PlatformClient(platform_url, deadline=5))
    account.login()
    boot = Bootstrap(
        agent_id="7c1e2f3a-0000-4000-8000-000000000001",
        name="keen-heron-7c1e",
        strategy="event_driven",
        personality=PERSONALITY,
        platform=platform,
        schedule=Schedule(cycle_seconds=1, jitter_seconds=0),
        risk_limits=Settings(_env_file=None).risk_limits(),
        clock=ClockSpec(time_scale=1.0, anchor=DEFAULT_ANCHOR, hours="always"),
        paused=False,
    )
    return Trader(boot._replace(**boot_changes), GatewayClient(gateway_url, "token"), account)


def test_a_cycle_turns_news_into_a_filled_order_and_a_restart_never_fills_twice(world):
    first = trader(world)
    result = first.run(100, NOW, paused=False)
    assert (result.submitted, result.filled, result.error) == (1, 1, None)
    portfolio = first.account.client.portfolio()
    (position,) = portfolio.positions
    assert position.symbol == "MRNA" and position.qty >= 1

    restarted = trader(world)  # killed mid-cycle, back up in the same cycle
    assert restarted.run(100, NOW, paused=False).submitted == 0  # it sees the position
    assert restarted.orders_on(NOW) == 1  # and counts today's orders on from the platform's
    order_id = client_order_id("7c1e2f3a-0000-4000-8000-000000000001", 100, "MRNA", "buy")
    # Had it died before seeing the fill, its resend carries the same id: a replay.
    resent = restarted.account.client.submit_order(order_id, "MRNA", "buy", qty=position.qty)
    assert resent.replayed
    assert [o.client_order_id for o in restarted.account.client.orders()] == [order_id]
    assert restarted.account.client.portfolio().positions[0].qty == position.qty


def test_a_restarted_agent_knows_how_long_it_has_held_and_exits_on_time(world):
    first = trader(world)
    assert first.run(100, NOW, paused=False).filled == 1
    (bought,) = first.account.client.orders()
    remembered = first.memory.open_trades()  # its heartbeats report it; bootstrap hands it back
    assert remembered == {"MRNA": {"catalyst": "fda", "entry": bought.filled_avg_price}}
    later = NOW + timedelta(days=1)  # the catalyst is stale; the trade held past half a day
    restarted = trader(world, open_trades=remembered)
    result = restarted.run(restarted.due(later), later, paused=False)
    assert (result.submitted, result.filled, result.error) == (1, 1, None)
    sold = restarted.account.client.orders()[0]
    assert (sold.symbol, sold.side) == ("MRNA", "sell")
    assert sold.client_order_id.endswith("-MRNA-sell") and restarted.memory.held_since == {}
    ((decision, _),) = restarted.outbox.pending  # it decided on the platform's date
    since = decision["inputs"]["held_since"]["MRNA"]
    assert datetime.fromisoformat(since) == datetime.fromisoformat(bought.created_at)
    # the trade the first process opened on news teaches the second about its catalyst
    assert restarted.catalysts.trades == {"fda": 1} and restarted.memory.open_trades() == {}


def test_a_trade_closed_while_no_process_ran_teaches_nothing():
    memory = Memory()
    fda = {"catalyst": "fda", "entry": 101.5}
    reported = {"MRNA": fda, "XOM": {"catalyst": "m&a", "entry": 80}}
    junk = {"A": {"entry": 3.0}, "B": {"catalyst": "fda", "entry": -1}, "C": None, "D": "x"}
    memory.restore({}, reported | junk | {"E": {"catalyst": "", "entry": 1}})
    assert memory.open_trades() == reported  # what is not an open trade is passed over
    memory.track({"MRNA": 5.0}, NOW, list)  # XOM was sold while the agent was down
    assert memory.open_trades() == {"MRNA": fda} and memory.catalysts.trades == {}


def _placed(symbol: str, side: str, qty: float, hour: int, status: str = "filled") -> Placed:
    at = datetime(2026, 12, 3, hour, tzinfo=UTC).isoformat()
    filled = qty if status == "filled" else 0.0
    return Placed(f"o{hour}", f"c{hour}", symbol, side, status, filled, 10.0, None, False, at)


def test_a_position_is_dated_by_the_buy_that_opened_it_as_far_as_the_orders_go_back():
    orders = [  # newest first, as the platform lists them
        _placed("AAPL", "buy", 5, 16),
        _placed("AAPL", "sell", 5, 15),  # part of it sold
        _placed("XOM", "buy", 7, 14, status="rejected"),
        _placed("AAPL", "buy", 10, 13),  # opened here…
        _placed("AAPL", "sell", 8, 12),  # …after the last one closed
        _placed("AAPL", "buy", 8, 11),
        _placed("MRNA", "buy", 3, 10),  # the list starts with it already 6 held
        _placed("JPM", "buy", 1, 9),  # not held any more
        _placed("XOM", "buy", 2, 8, status="accepted"),
        _placed("AAPL", "buy", 3, 8)._replace(created_at="yesterday"),  # not a time: passed
    ]
    held = {"AAPL": 10.0, "MRNA": 6.0, "XOM": 7.0}
    hour = lambda h: datetime(2026, 12, 3, h, tzinfo=UTC)  # noqa: E731
    assert opened_at(orders, held) == {"AAPL": hour(13), "MRNA": hour(10)}
    assert opened_at([], held) == {}


def test_the_daily_order_count_runs_by_the_exchanges_date_as_the_relays_cap_does(world):
    agent = trader(world)
    agent.orders_today = ("2026-12-03", 5)
    assert agent.orders_on(datetime(2026, 12, 4, 2, tzinfo=UTC)) == 5  # 21:00 in New York
    assert agent.orders_on(datetime(2026, 12, 4, 6, tzinfo=UTC)) == 0  # the next day there


def test_a_cycle_runs_once_per_cycle_number(world):
    agent = trader(world)
    cycle = agent.due(NOW)
    assert cycle == int((NOW.timestamp() - agent.offset) // 60)
    agent.run(cycle, NOW, paused=False)
    assert agent.due(NOW) is None
    assert trader(world).due(NOW) == cycle  # a restarted agent is in the same cycle


def test_agents_start_their_cycles_at_different_offsets(world):
    offsets = {
        trader(world, agent_id=f"{i:08d}-0000-4000-8000-000000000000").offset for i in range(20)
    }
    assert len(offsets) > 15 and all(0 <= o < 60 for o in offsets)


def test_paused_fleet_submits_nothing(world):
    result = trader(world).run(7, NOW, paused=True)
    assert (result.submitted, result.error) == (0, None)


@pytest.mark.parametrize(
    ("path", "body", "error_part"),
    [
        ("/v1/feed/universe", {"nope": []}, "KeyError"),
        ("/v1/feed/quotes", {"quotes": [{"symbol": "MRNA", "price": math.nan}]}, None),
        ("/v1/feed/quotes", {"quotes": [{"symbol": "MRNA"}]}, None),
        ("/v1/feed/news", {"items": []}, None),
        ("/v1/feed/news", {"items": [{"symbols": ["MRNA"], "sentiment": {"score": "high"}}]}, None),
        ("/v1/feed/news", {"error": {"code": "feed_unavailable", "message": "down"}}, "down"),
    ],
)
def test_bad_gateway_data_skips_the_cycle_without_crashing(world, path, body, error_part):
    gateway, *_ = world
    status = 503 if "error" in body else 200
    gateway.on(path, (status, body, {}))
    agent = trader(world)
    result = agent.run(9, NOW, paused=False)
    assert result.submitted == 0
    if error_part:
        assert result.error.startswith("cycle 9 skipped") and error_part in result.error
    assert agent.account.client.portfolio().positions == ()


def test_a_closed_event_trade_teaches_its_catalyst(world):
    gateway, *_ = world
    agent = trader(world)
    assert agent.run(200, NOW, paused=False).filled == 1
    bad = {
        **FDA["items"][0],
        "id": "n2",
        "headline": "FDA rejects Moderna drug",
        "sentiment": {"score": -0.8, "label": "negative", "relevance": 1.0},
    }
    gateway.on("/v1/feed/news", (200, {"items": [bad], "stale": False}, {}))
    result = agent.run(201, NOW, paused=False)
    assert (result.submitted, result.error) == (1, None)
    report = agent.catalysts.report()
    assert list(report) == ["fda"] and report["fda"]["trades"] == 1
    assert agent.account.client.portfolio().positions == ()


def test_a_restarted_agent_acts_on_what_it_had_learned(world):
    learned = {"fda": {"score": 0.2, "trades": 3, "weight": 1.5}}
    assert trader(world, catalysts=learned).catalysts.report() == learned
    assert trader(world).catalysts.report() == {}  # a first process, or an older gateway


def test_outside_the_nyse_session_a_cycle_holds_without_a_call(world, caplog):
    gateway = world[0]
    agent = trader(world, clock=ClockSpec(time_scale=1.0, anchor=DEFAULT_ANCHOR, hours="nyse"))
    saturday = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    caplog.set_level("INFO", logger="agent.cycle")
    result = agent.run(agent.due(saturday), saturday, paused=False)
    assert (result.submitted, result.error) == (0, None)
    assert agent.due(saturday) is None  # the cycle is spent, not retried all weekend
    assert gateway.hits("/v1/feed/quotes") == gateway.hits("/v1/feed/news") == 0
    assert agent.account.client.orders() == []
    assert "market closed until 2026-11-23T14:30:00+00:00: holding orders" in caplog.text


def test_the_account_is_read_again_after_orders_and_otherwise_every_few_heartbeats(world):
    agent = trader(world)
    account, reads = agent.account, []
    read = account.client.portfolio
    account.client.portfolio = lambda: reads.append(1) or read()  # the real call, counted

    traded = agent.run(300, NOW, paused=False)
    assert (traded.submitted, len(reads)) == (1, 1)  # the cycle read it before its buy
    state, error = account.report(traded.portfolio, changed=True)
    assert error is None and [p["symbol"] for p in state["positions"]] == ["MRNA"]
    assert len(reads) == 2  # read again: the buy changed it

    for _ in range(REPORT_EVERY - 1):
        assert account.report() == (state, None)
    assert len(reads) == 2
    assert account.report() == (state, None) and len(reads) == 3  # due again

    held = agent.run(301, NOW, paused=True)
    assert [p["symbol"] for p in account.report(held.portfolio)[0]["positions"]] == ["MRNA"]
    assert len(reads) == 4  # the cycle's own read served the heartbeat

    # the market closed: its prices cannot move the positions, so reads are rarer
    for _ in range(STILL_EVERY - 1):
        assert account.report(market_open=False) == (state, None)
    assert len(reads) == 4
    account.report(market_open=False)
    assert len(reads) == 5
    account.report(market_open=True)
    assert len(reads) == 5  # a fresh read, however the market stands


def test_a_flat_account_is_read_rarely_since_only_its_own_orders_can_change_it(world):
    agent = trader(world)
    account, reads = agent.account, []
    read = account.client.portfolio
    account.client.portfolio = lambda: reads.append(1) or read()

    state, error = account.report()
    assert error is None and state["positions"] == [] and len(reads) == 1
    for _ in range(STILL_EVERY - 1):
        assert account.report() == (state, None)
    assert len(reads) == 1
    account.report()
    assert len(reads) == 2
