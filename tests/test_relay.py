"""The platform relay against a real HTTP server: an agent's call goes upstream as it was
sent, the answer comes back with only the headers an agent needs, a portfolio answer and
a confirmed follow are noted for the next batch, a platform that does not answer is a
502 the agent's client knows, and no order passes while the fleet is paused or past the
agent's orders for the day."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from orchestrator.control.alarms import Thresholds
from orchestrator.gateway.relay import PlatformRelay
from orchestrator.state.errors import DatabaseError
from orchestrator.state.follows import FollowBook
from orchestrator.state.health import StoreHealth
from orchestrator.state.orders import OrderBook
from orchestrator.state.store import Store
from orchestrator.tools.harness import free_port, serve
from orchestrator.tools.scripted import ScriptedApp

NOW = datetime(2026, 12, 3, 15, tzinfo=UTC)
PORTFOLIO = {
    "cash": 900.0,
    "equity": 1000.0,
    "positions": [
        {"symbol": "AAPL", "qty": 1, "avg_price": 90.0, "price": 100.0, "unrealized_pl": 10.0}
    ],
}


def relay(store, url: str, cap: int = 20, market=lambda: NOW) -> PlatformRelay:
    health = StoreHealth(lambda: NOW)
    limits = Thresholds(0.0, 0.5, 5)
    return PlatformRelay(url, OrderBook(store), store, limits, health, lambda: NOW, market, cap)


def order(cid: str, at: datetime = NOW) -> dict:
    """A platform's answer to a submit: the order, filled."""
    return {
        "order_id": f"o-{cid}",
        "client_order_id": cid,
        "symbol": "AAPL",
        "side": "buy",
        "status": "filled",
        "filled_qty": 1,
        "filled_avg_price": 100.0,
        "created_at": at.isoformat(),
    }


def test_a_call_goes_upstream_as_sent_and_its_answer_comes_back(store):
    (agent,), _ = store.spawn(
        "key-relay", [{"name": "r0", "strategy": "momentum"}], lambda _id: "x", NOW
    )
    platform = ScriptedApp().on(
        "/api/trading/portfolio", (200, PORTFOLIO, {"retry-after": "3", "x-internal": "no"})
    )
    platform.on("/api/auth/login", (401, {"error": {"code": "bad_login"}}, {}))
    with serve(platform) as url:
        passing = relay(store, url)

        async def calls():
            try:
                login = await passing.forward(
                    agent, "POST", "api/auth/login", "", b'{"username": "a"}', None
                )
                portfolio = await passing.forward(
                    agent, "GET", "api/trading/portfolio", "fresh=1", b"", "Bearer platform"
                )
                return login, portfolio
            finally:
                await passing.aclose()

        login, portfolio = asyncio.run(calls())
    assert login.status == 401 and json.loads(login.body)["error"]["code"] == "bad_login"
    sent = platform.seen[0]
    assert sent.body == b'{"username": "a"}'  # byte for byte
    assert "authorization" not in sent.headers  # no login: none added
    read = platform.seen[1]
    assert read.query == {"fresh": "1"} and read.headers["authorization"] == "Bearer platform"
    assert portfolio.status == 200 and json.loads(portfolio.body) == PORTFOLIO
    assert portfolio.headers == {"content-type": "application/json", "retry-after": "3"}
    passing.flush()  # the listed position reaches the book in the batch
    assert json.loads(store.get(agent.id).positions) == PORTFOLIO["positions"]


def test_a_platform_that_does_not_answer_is_a_502_for_the_agent_and_down_until_it_does(store):
    port = free_port()
    down = relay(store, f"http://127.0.0.1:{port}")

    def statuses(calls: int) -> list[int]:
        async def call():
            sent = down.forward(None, "GET", "api/leaderboard", "", b"", None)
            return (await sent).status

        return [asyncio.run(call()) for _ in range(calls)]

    assert down.reach() == (None, 0)
    answer = asyncio.run(down.forward(None, "GET", "api/leaderboard", "", b"", None))
    assert answer.status == 502
    assert json.loads(answer.body)["error"]["code"] == "platform_unreachable"
    assert statuses(1) == [502] and down.reach() == (NOW, 2)  # down since the first
    unavailable = (503, {"error": {"code": "maintenance"}}, {})
    platform = ScriptedApp().on("/api/leaderboard", unavailable, (200, [], {}))
    with serve(platform, port):
        assert statuses(1) == [503] and down.reach() == (NOW, 3)  # an answer, but no platform
        assert statuses(1) == [200] and down.reach() == (None, 0)
    asyncio.run(down.aclose())


def test_follows_wait_for_the_batch_and_for_a_store_that_cannot_take_them(store):
    (a, b), _ = store.spawn(
        "key-follows",
        [{"name": "f0", "strategy": "momentum"}, {"name": "f1", "strategy": "momentum"}],
        lambda agent_id: f"hash-{agent_id}",
        NOW,
    )
    listing = {"following": ["u-q"], "followers": []}  # what b's listing says
    platform = ScriptedApp().on("/api/subscriptions", (200, listing, {}))
    platform.on("/api/subscriptions/u-z", (200, {}, {}))
    follows = FollowBook(store)
    with serve(platform) as url:
        passing = relay(store, url)

        def send(*calls: tuple) -> None:
            async def sent():
                for agent, method, path, body in calls:
                    await passing.forward(agent, method, path, "", body, "Bearer p")

            asyncio.run(sent())

        send((a, "POST", "api/subscriptions", b'{"user_id": "u-x"}'))
        send((b, "POST", "api/subscriptions", b'{"user_id": "u-y"}'))
        assert follows.edges() == []  # waiting for the batch
        with store.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE follows RENAME TO follows_away"))
        try:
            passing.flush()
        finally:
            with store.engine.begin() as connection:
                connection.execute(sa.text("ALTER TABLE follows_away RENAME TO follows"))
        assert follows.edges() == [] and passing.health.last_failure_at == NOW
        send(
            (a, "POST", "api/subscriptions", b'{"user_id": "u-z"}'),
            (a, "DELETE", "api/subscriptions/u-z", b""),
            (b, "GET", "api/subscriptions", b""),  # the platform's list replaces b's
        )
        passing.flush()  # what waited, then what came after it, in their order
        asyncio.run(passing.aclose())
    assert sorted(follows.edges()) == sorted([(a.id, "u-x"), (b.id, "u-q")])


def test_no_order_passes_while_the_fleet_is_paused_or_the_switch_cannot_be_read(store):
    (agent,), _ = store.spawn(
        "key-paused", [{"name": "k0", "strategy": "momentum"}], lambda _id: "x", NOW
    )
    platform = ScriptedApp().on("/api/trading/submit", (201, order("c-1"), {}))
    platform.on("/api/trading/portfolio", (200, PORTFOLIO, {}))
    with serve(platform) as url:
        passing = relay(store, url)

        def send(method: str = "POST", path: str = "api/trading/submit"):
            return asyncio.run(passing.forward(agent, method, path, "", b"{}", "Bearer p"))

        store.set_paused(True, NOW)
        refused = send()
        assert refused.status == 409
        assert json.loads(refused.body)["error"]["code"] == "fleet_paused"
        assert send("GET", "api/trading/portfolio").status == 200  # reading goes on
        assert [seen.path for seen in platform.seen] == ["/api/trading/portfolio"]

        store.set_paused(False, NOW)
        assert send().status == 201
        assert platform.seen[-1].path == "/api/trading/submit"

        # A store that cannot say whether the fleet is paused lets no order through.
        unsure = relay(Store(store.engine), url)  # nothing read yet: it must ask the store
        with store.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE fleet_state RENAME TO fleet_state_away"))
        try:
            with pytest.raises(DatabaseError):
                asyncio.run(unsure.forward(agent, "POST", "api/trading/submit", "", b"{}", None))
        finally:
            with store.engine.begin() as connection:
                connection.execute(sa.text("ALTER TABLE fleet_state_away RENAME TO fleet_state"))
        assert len(platform.seen) == 2 and unsure.health.last_failure_at == NOW
        asyncio.run(passing.aclose())
        asyncio.run(unsure.aclose())


def test_no_order_passes_the_daily_cap_whatever_the_agent_sends(store):
    """An agent that ignores its own rails: past the cap its submits are refused and
    alarmed once; a resend of today's order is a replay and passes; orders sent together
    count each other; a relay that starts again reads the day from the order book; the
    next trading day opens the cap again and ends the alarm."""
    (agent,), _ = store.spawn(
        "key-cap", [{"name": "c0", "strategy": "momentum"}], lambda _: "x", NOW
    )
    tomorrow = NOW + timedelta(days=1)
    platform = ScriptedApp(delay=0.2).on(
        "/api/trading/submit",
        *[(201, order(cid), {}) for cid in ("c-1", "c-2", "c-1")],
        (201, order("c-4", tomorrow), {}),
    )
    market = [NOW]
    with serve(platform) as url:
        capped = relay(store, url, cap=2, market=lambda: market[0])

        async def submit(*cids: str):
            bodies = [json.dumps({"client_order_id": c}).encode() for c in cids]
            calls = [
                capped.forward(agent, "POST", "api/trading/submit", "", b, None) for b in bodies
            ]
            return await asyncio.gather(*calls)

        def codes(answers) -> list:
            return [
                a.status if a.status < 300 else json.loads(a.body)["error"]["code"] for a in answers
            ]

        together = codes(asyncio.run(submit("c-1", "c-2", "c-3")))  # in any order
        assert sorted(together, key=str) == [201, 201, "order_cap"]
        assert platform.hits("/api/trading/submit") == 2  # sent together, the third never left
        refused = asyncio.run(submit("c-5"))[0]
        assert (
            "placed its 2 orders of trading day 2026-12-03"
            in json.loads(refused.body)["error"]["message"]
        )
        assert codes(asyncio.run(submit("c-1"))) == [201]  # a replay of today's order passes
        alerts = [a for a in store.alerts(10) if a.kind == "order_cap"]
        assert len(alerts) == 1 and alerts[0].text.startswith(
            f"agent {agent.name} has placed its 2 orders"
        )
        assert "order_cap" in store.get(agent.id).alarms

        restarted = relay(store, url, cap=2, market=lambda: market[0])
        again = asyncio.run(restarted.forward(agent, "POST", "api/trading/submit", "", b"{}", None))
        assert again.status == 409 and platform.hits("/api/trading/submit") == 3

        market[0] = tomorrow
        assert codes(asyncio.run(submit("c-4"))) == [201]
        assert "order_cap" not in (store.get(agent.id).alarms or "")
        for done in (capped, restarted):
            asyncio.run(done.aclose())


def test_a_nul_the_agent_sent_neither_breaks_the_store_nor_is_kept(store):
    """PostgreSQL cannot keep a NUL: an order's rationale keeps the rest of its text, and
    a follow of an id holding one (which no platform id does) is not noted."""
    (agent,), _ = store.spawn(
        "key-nul", [{"name": "n0", "strategy": "momentum"}], lambda _: "x", NOW
    )
    platform = ScriptedApp().on("/api/trading/submit", (201, order("c-nul"), {}))
    platform.on("/api/subscriptions", (200, {}, {}))
    follows = FollowBook(store)
    with serve(platform) as url:
        passing = relay(store, url)
        sent = {"client_order_id": "c-nul", "rationale": "news\x00 and momentum"}

        async def calls():
            try:
                await passing.forward(
                    agent, "POST", "api/trading/submit", "", json.dumps(sent).encode(), None
                )
                follow = json.dumps({"user_id": "u-\x00"}).encode()
                await passing.forward(agent, "POST", "api/subscriptions", "", follow, None)
            finally:
                await passing.aclose()

        asyncio.run(calls())
        passing.flush()
    (kept,) = OrderBook(store).recent(agent.id, 5)
    assert kept.rationale == "news\ufffd and momentum"
    assert follows.edges() == []
    assert passing.health.last_failure_at is None
