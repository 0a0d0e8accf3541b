"""The client's retry policy against a scripted HTTP server on 127.0.0.1."""

import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from platform_client import (
    InvalidRequest,
    PlatformClient,
    PlatformUnavailable,
    RateLimited,
)
from tests.servers import free_port, serve

PORTFOLIO = {"cash": 10.0, "equity": 10.0, "positions": []}


class Script:
    """Answers each request with the next scripted response and remembers the bodies."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.bodies = []

    async def __call__(self, request: Request):
        self.bodies.append(await request.body())
        status, body, headers = self.responses.pop(0) if self.responses else (200, PORTFOLIO, {})
        return JSONResponse(body, status, headers=headers)


def error(status, code, **headers):
    return (status, {"error": {"code": code, "message": f"{code} says the server"}}, headers)


@pytest.fixture
def scripted():
    scripts = {}

    async def route(request):
        return await scripts[request.url.path](request)

    app = Starlette(routes=[Route("/{path:path}", route, methods=["GET", "POST"])])
    with serve(app) as url:
        yield url, scripts


def client(url, **kwargs):
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    return PlatformClient(url, access_token="t", sleep=sleep, **kwargs), waits


def test_429_is_waited_out_for_its_retry_after(scripted):
    url, scripts = scripted
    scripts["/api/trading/portfolio"] = script = Script(
        error(429, "rate_limited", **{"Retry-After": "1"})
    )
    api, waits = client(url)
    assert api.portfolio().cash == 10.0
    assert waits == [1.0]
    assert len(script.bodies) == 2


def test_429_longer_than_the_deadline_surfaces(scripted):
    url, scripts = scripted
    scripts["/api/trading/portfolio"] = Script(error(429, "rate_limited", **{"Retry-After": "60"}))
    api, waits = client(url, deadline=5)
    with pytest.raises(RateLimited) as err:
        api.portfolio()
    assert err.value.retry_after == 60 and waits == []


def test_500s_are_retried_then_surfaced_with_the_platform_code(scripted):
    url, scripts = scripted
    scripts["/api/trading/portfolio"] = script = Script(*[error(500, "boom")] * 10)
    api, waits = client(url, max_attempts=4)
    with pytest.raises(PlatformUnavailable) as err:
        api.portfolio()
    assert (err.value.status, err.value.code) == (500, "boom")
    assert len(script.bodies) == 4 and len(waits) == 3
    assert all(0 <= w <= 8 for w in waits)


def test_a_500_then_success_resends_the_same_order_intent(scripted):
    url, scripts = scripted
    order = {
        "order_id": "o1",
        "client_order_id": "c-9",
        "symbol": "AAPL",
        "side": "buy",
        "status": "filled",
        "filled_qty": 1,
        "filled_avg_price": 10.0,
    }
    scripts["/api/trading/submit"] = script = Script(error(503, "busy"), (201, order, {}))
    api, _ = client(url)
    assert api.submit_order("c-9", "AAPL", "buy", qty=1).order_id == "o1"
    assert len(script.bodies) == 2 and script.bodies[0] == script.bodies[1]


def test_422_is_not_retried(scripted):
    url, scripts = scripted
    scripts["/api/trading/submit"] = script = Script(error(422, "unknown_symbol"))
    api, waits = client(url)
    with pytest.raises(InvalidRequest) as err:
        api.submit_order("c-1", "ZZZZ", "buy", qty=1)
    assert err.value.code == "unknown_symbol" and err.value.status == 422
    assert len(script.bodies) == 1 and waits == []


def test_connection_refused_is_retried_until_the_deadline(scripted):
    api, waits = client(f"http://127.0.0.1:{free_port()}", deadline=1.5)
    with pytest.raises(PlatformUnavailable) as err:
        api.portfolio()
    assert err.value.code == "unreachable"
    assert waits and sum(waits) <= 1.5
