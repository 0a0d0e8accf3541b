"""The client's retry policy against a scripted HTTP server on 127.0.0.1."""

import time
from datetime import UTC, datetime

import pytest

from orchestrator.tools.harness import free_port, serve
from orchestrator.tools.scripted import ScriptedApp
from platform_client import (
    BadAnswer,
    InvalidRequest,
    PlatformClient,
    PlatformUnavailable,
    RateLimited,
)

PORTFOLIO = {"cash": 10.0, "equity": 10.0, "positions": []}


def error(status, code, **headers):
    return (status, {"error": {"code": code, "message": f"{code} says the server"}}, headers)


OK = (200, PORTFOLIO, {})


@pytest.fixture
def scripted():
    app = ScriptedApp()
    with serve(app) as url:
        yield url, app


def client(url, **kwargs):
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    return PlatformClient(url, access_token="t", sleep=sleep, **kwargs), waits


def test_429_is_waited_out_for_its_retry_after(scripted):
    url, app = scripted
    app.on("/api/trading/portfolio", error(429, "rate_limited", **{"Retry-After": "1"}), OK)
    api, waits = client(url)
    assert api.portfolio().cash == 10.0
    assert waits == [1.0]
    assert app.hits("/api/trading/portfolio") == 2


def test_429_longer_than_the_deadline_surfaces(scripted):
    url, app = scripted
    app.on("/api/trading/portfolio", error(429, "rate_limited", **{"Retry-After": "60"}))
    api, waits = client(url, deadline=5)
    with pytest.raises(RateLimited) as err:
        api.portfolio()
    assert err.value.retry_after == 60 and waits == []


def test_500s_are_retried_then_surfaced_with_the_platform_code(scripted):
    url, app = scripted
    app.on("/api/trading/portfolio", error(500, "boom"))
    api, waits = client(url, max_attempts=4)
    with pytest.raises(PlatformUnavailable) as err:
        api.portfolio()
    assert (err.value.status, err.value.code) == (500, "boom")
    assert app.hits("/api/trading/portfolio") == 4 and len(waits) == 3
    assert all(0 <= w <= 8 for w in waits)


def test_a_500_then_success_resends_the_same_order_intent(scripted):
    url, app = scripted
    order = {
        "order_id": "o1",
        "client_order_id": "c-9",
        "symbol": "AAPL",
        "side": "buy",
        "status": "filled",
        "filled_qty": 1,
        "filled_avg_price": 10.0,
    }
    app.on("/api/trading/submit", error(503, "busy"), (201, order, {}))
    api, _ = client(url)
    assert api.submit_order("c-9", "AAPL", "buy", qty=1).order_id == "o1"
    first, second = (seen.body for seen in app.seen)
    assert first == second and b'"client_order_id":"c-9"' in first.replace(b" ", b"")


def test_422_is_not_retried(scripted):
    url, app = scripted
    app.on("/api/trading/submit", error(422, "unknown_symbol"))
    api, waits = client(url)
    with pytest.raises(InvalidRequest) as err:
        api.submit_order("c-1", "ZZZZ", "buy", qty=1)
    assert err.value.code == "unknown_symbol" and err.value.status == 422
    assert app.hits("/api/trading/submit") == 1 and waits == []


def test_connection_refused_is_retried_until_the_deadline(scripted):
    api, waits = client(f"http://127.0.0.1:{free_port()}", deadline=1.5)
    with pytest.raises(PlatformUnavailable) as err:
        api.portfolio()
    assert err.value.code == "unreachable"
    assert waits and sum(waits) <= 1.5


def test_a_success_that_is_not_the_platforms_document_is_one_error_not_a_crash(scripted):
    # a proxy's page, or another service at FLEET_PLATFORM_URL: a JSONDecodeError or a
    # KeyError escaped the client, and the daemon logged a traceback at every provisioning
    url, app = scripted
    page = (200, "<html>welcome to nginx</html>", {"content-type": "text/html"})
    for path in (
        "/api/controller/create-agent",
        "/api/controller/agents",
        "/api/auth/login",
        "/api/trading/submit",
        "/api/trading/portfolio",
        "/api/subscriptions",
        "/api/social/leaderboard",
    ):
        app.on(path, page)
    app.on("/api/trading/orders", (200, {"orders": []}, {}))  # JSON, but not a list
    app.on("/api/social/feed", (200, {"trades": [{"symbol": "AAPL"}]}, {}))  # items short
    api, _ = client(url, controller_key="k")
    calls = {
        "/api/controller/create-agent": lambda: api.create_agent("key", "name"),
        "/api/controller/agents": api.controller_agents,
        "/api/auth/login": lambda: api.login("user", "password"),
        "/api/trading/submit": lambda: api.submit_order("c-1", "AAPL", "buy", qty=1),
        "/api/trading/portfolio": api.portfolio,
        "/api/subscriptions": api.subscriptions,
        "/api/social/leaderboard": api.leaderboard,
        "/api/trading/orders": api.orders,
        "/api/social/feed": lambda: api.social_feed(datetime.now(UTC)),
    }
    said = {}
    for path, call in calls.items():
        with pytest.raises(BadAnswer) as refused:
            call()
        assert refused.value.code == "bad_answer" and refused.value.status == 200
        said[path] = str(refused.value)
        assert said[path].startswith(path) and " answered 200 with no document of" in said[path]
    assert "(text/html" in said["/api/trading/portfolio"]
    assert app.hits("/api/trading/portfolio") == 1  # a success is not retried
