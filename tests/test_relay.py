"""The platform relay against a real HTTP server: an agent's call goes upstream as it was
sent, the answer comes back with only the headers an agent needs, a portfolio answer is
noted for the next batch, and a platform that does not answer is a 502 the agent's
client knows."""

import asyncio
import json
from datetime import UTC, datetime

from orchestrator.control.alarms import Thresholds
from orchestrator.gateway.relay import PlatformRelay
from orchestrator.state.health import StoreHealth
from orchestrator.state.orders import OrderBook
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


def relay(store, url: str) -> PlatformRelay:
    return PlatformRelay(
        url, OrderBook(store), store, Thresholds(0.0, 0.5, 5), StoreHealth(lambda: NOW), lambda: NOW
    )


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


def test_a_platform_that_does_not_answer_is_a_502_for_the_agent(store):
    down = relay(store, f"http://127.0.0.1:{free_port()}")

    async def call():
        try:
            return await down.forward(None, "GET", "api/trading/portfolio", "", b"", None)
        finally:
            await down.aclose()

    answer = asyncio.run(call())
    assert answer.status == 502
    assert json.loads(answer.body)["error"]["code"] == "platform_unreachable"
