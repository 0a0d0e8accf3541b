"""platform_client against the live sandbox over HTTP on 127.0.0.1, on SQLite and PostgreSQL."""

import json
import math
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from orchestrator.tools.harness import serve
from orchestrator.tools.servers import DroppingProxy
from platform_client import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PlatformClient,
    TradingSession,
)
from sandbox.app import create_sandbox_app
from tests.conftest import CONTROLLER_KEY, sandbox_config


@pytest.fixture
def controller(sandbox_url):
    client = PlatformClient(sandbox_url, controller_key=CONTROLLER_KEY, deadline=5)
    yield client
    client.close()


def new_agent(controller, key="agent-1", cash=None):
    creds = controller.create_agent(key, f"Agent {key}", {"strategy": "contrarian"}, cash)
    client = PlatformClient(controller.base_url, deadline=5)
    client.login(creds.username, creds.password)
    return creds, client


def raw(url, method, path, **kwargs):
    return httpx.request(method, f"{url}{path}", timeout=10, **kwargs)


def test_create_agent_replays_with_the_same_key_and_body(controller):
    first = controller.create_agent("key-a", "Alpha", {"risk": 0.5})
    again = controller.create_agent("key-a", "Alpha", {"risk": 0.5})
    assert first == again
    assert first.role == "agent" and first.created_by == "system"
    assert "password" not in repr(first)
    accounts = controller.controller_agents()
    assert [a["idempotency_key"] for a in accounts] == ["key-a"]
    with pytest.raises(Conflict) as err:
        controller.create_agent("key-a", "Another name", {"risk": 0.5})
    assert err.value.code == "idempotency_conflict"
    assert len(controller.controller_agents()) == 1


def test_replayed_create_answers_200_then_login_works(sandbox_url):
    body = {"idempotency_key": "k1", "display_name": "A", "profile": {}}
    headers = {"X-Controller-Key": CONTROLLER_KEY}
    first = raw(sandbox_url, "POST", "/api/controller/create-agent", json=body, headers=headers)
    second = raw(sandbox_url, "POST", "/api/controller/create-agent", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    login = raw(
        sandbox_url,
        "POST",
        "/api/auth/login",
        json={"username": first.json()["username"], "password": first.json()["password"]},
    )
    assert login.status_code == 200
    assert login.json()["token_type"] == "bearer" and login.json()["expires_in"] > 0


def test_login_refuses_wrong_password_and_disabled_accounts(controller):
    creds, client = new_agent(controller)
    with pytest.raises(AuthError) as err:
        client.login(creds.username, "wrong")
    assert err.value.status == 401
    assert controller.retire_agent(creds.user_id) == "disabled"
    assert controller.retire_agent(creds.user_id) == "disabled"  # idempotent
    with pytest.raises(Forbidden) as err:
        client.login(creds.username, creds.password)
    assert err.value.code == "account_disabled"
    with pytest.raises(Forbidden):
        client.portfolio()  # the old token no longer trades either
    with pytest.raises(NotFound):
        controller.retire_agent("no-such-user")


def test_buy_fills_at_the_market_price_and_a_repeat_replays(controller):
    _, client = new_agent(controller, cash=50_000)
    order = client.submit_order("c-1", "AAPL", "buy", qty=10, rationale="test")
    assert order.status == "filled" and order.filled_qty == 10 and not order.replayed
    price = order.filled_avg_price
    again = client.submit_order("c-1", "AAPL", "buy", qty=10)
    assert again.replayed and again.order_id == order.order_id
    portfolio = client.portfolio()
    assert portfolio.cash == pytest.approx(50_000 - round(10 * price, 2))
    (position,) = portfolio.positions
    assert (position.symbol, position.qty, position.avg_price) == ("AAPL", 10, price)
    assert portfolio.equity == pytest.approx(portfolio.cash + position.market_value)
    assert position.market_value == pytest.approx(10 * position.price, abs=0.01)
    assert len(client.orders()) == 1


def test_notional_buy_and_partial_sell(controller):
    _, client = new_agent(controller)
    bought = client.submit_order("n-1", "MSFT", "buy", notional=1000)
    assert bought.filled_qty * bought.filled_avg_price == pytest.approx(1000, abs=0.01)
    sold = client.submit_order("n-2", "MSFT", "sell", qty=bought.filled_qty / 2)
    assert sold.status == "filled"
    (position,) = client.portfolio().positions
    assert position.qty == pytest.approx(bought.filled_qty / 2, abs=1e-6)
    client.submit_order("n-3", "MSFT", "sell", qty=position.qty)
    assert client.portfolio().positions == ()


def test_buy_beyond_cash_is_a_rejected_order_with_a_reason(controller):
    _, client = new_agent(controller, cash=100)
    order = client.submit_order("big", "MSFT", "buy", qty=100)
    assert order.status == "rejected" and order.filled_qty == 0
    assert order.reject_reason.startswith("insufficient cash")
    assert client.portfolio().cash == 100
    assert client.submit_order("big", "MSFT", "buy", qty=100).replayed


def test_the_largest_opening_cash_is_kept_to_the_cent(controller):
    # $1e9 is 1e11 cents: past PostgreSQL's INTEGER, where it was a 500
    _, client = new_agent(controller, cash=1e9)
    assert client.submit_order("whale", "MSFT", "buy", qty=1_000_000).status == "filled"
    after = client.portfolio()
    assert after.equity == pytest.approx(1e9, rel=1e-3) and after.cash < 1e9 - 1e8


def test_subscriptions_between_agents(controller):
    a, client_a = new_agent(controller, "a")
    b, client_b = new_agent(controller, "b")
    client_a.follow(b.user_id)
    client_a.follow(b.user_id)  # already following: fine
    assert client_a.subscriptions() == {"following": [b.user_id], "followers": []}
    assert client_b.subscriptions() == {"following": [], "followers": [a.user_id]}
    with pytest.raises(InvalidRequest):
        client_a.follow(a.user_id)
    with pytest.raises(NotFound):
        client_a.follow("no-such-user")
    client_a.unfollow(b.user_id)
    assert client_b.subscriptions()["followers"] == []


def test_a_retired_account_leaves_the_social_graph(controller):
    (a, client_a), (b, client_b), (c, client_c) = (new_agent(controller, k) for k in "xyz")
    client_a.follow(b.user_id)
    client_b.follow(a.user_id)
    client_c.follow(b.user_id)
    client_b.follow(c.user_id)
    controller.retire_agent(b.user_id)
    controller.retire_agent(b.user_id)  # again: the same
    assert client_a.subscriptions() == {"following": [], "followers": []}
    assert client_c.subscriptions() == {"following": [], "followers": []}
    with pytest.raises(NotFound, match="no active account"):
        client_a.follow(b.user_id)
    client_a.follow(c.user_id)  # the living are still there to follow
    assert {leader.user_id: leader.followers for leader in client_c.leaderboard()} == {
        a.user_id: 0,
        c.user_id: 1,
    }


def test_social_feed_shows_only_followed_accounts_trades_and_only_to_the_follower(controller):
    (_, client_a), (b, client_b), (_, client_c) = (
        new_agent(controller, key) for key in ("fa", "fb", "fc")
    )
    before = datetime.now(UTC) - timedelta(minutes=1)
    client_a.follow(b.user_id)
    client_b.submit_order("b-1", "MSFT", "buy", qty=2)
    client_b.submit_order("b-2", "MSFT", "buy", qty=10**6)  # rejected: not a trade
    client_c.submit_order("c-1", "AAPL", "buy", qty=1)  # not followed
    (trade,) = client_a.social_feed(before)
    assert (trade.user_id, trade.display_name, trade.symbol, trade.side, trade.qty) == (
        b.user_id,
        "Agent fb",
        "MSFT",
        "buy",
        2,
    )
    assert trade.price and trade.price > 0
    assert client_b.social_feed(before) == []  # b follows no one: b sees nothing of itself
    assert client_c.social_feed(before) == []  # c does not follow b
    assert client_a.social_feed(datetime.fromisoformat(trade.at)) == []  # strictly after
    client_a.unfollow(b.user_id)
    assert client_a.social_feed(before) == []
    anonymous = raw(controller.base_url, "GET", "/api/social/feed", params={"since": "x"})
    assert anonymous.status_code == 401
    naive = raw(
        controller.base_url,
        "GET",
        "/api/social/feed",
        params={"since": "2026-01-01T00:00:00"},
        headers={"Authorization": f"Bearer {client_a.access_token}"},
    )
    assert naive.status_code == 422 and "since" in naive.json()["error"]["message"]


def test_leaderboard_ranks_active_accounts_by_return_with_followers(controller):
    (a, client_a), (b, client_b) = new_agent(controller, "la"), new_agent(controller, "lb")
    c, _ = new_agent(controller, "lc")
    client_a.follow(b.user_id)
    client_b.submit_order("lb-1", "MSFT", "buy", qty=5)
    controller.retire_agent(c.user_id)
    board = {leader.user_id: leader for leader in client_a.leaderboard()}
    assert set(board) == {a.user_id, b.user_id}  # a disabled account is not shown
    assert board[b.user_id].followers == 1 and board[a.user_id].followers == 0
    assert board[b.user_id].symbols == ("MSFT",) and board[a.user_id].symbols == ()
    assert board[a.user_id].return_ == 0
    assert board[a.user_id].me and not board[b.user_id].me
    portfolio = client_b.portfolio()
    assert board[b.user_id].return_ == pytest.approx(portfolio.equity / 100_000 - 1, abs=1e-4)
    returns = [leader.return_ for leader in client_a.leaderboard()]
    assert returns == sorted(returns, reverse=True)
    assert client_b.leaderboard(following=True) == []  # b follows no one
    # Only the accounts one follows, wherever they rank: the top account follows the other,
    # which its board of one row does not show.
    client_b.follow(a.user_id)
    (top,) = client_a.leaderboard(limit=1)
    (other,) = set(board) - {top.user_id}
    clients = {a.user_id: client_a, b.user_id: client_b}
    followed = clients[top.user_id].leaderboard(limit=1, following=True)
    assert [leader.user_id for leader in followed] == [other]


def test_one_leaderboard_ranking_serves_every_reader_for_its_window(database_url):
    import time

    app = create_sandbox_app(sandbox_config(database_url, leaderboard_seconds=2))
    with serve(app) as url:
        controller = PlatformClient(url, controller_key=CONTROLLER_KEY, deadline=5)
        (a, client_a), (b, client_b) = new_agent(controller, "wa"), new_agent(controller, "wb")

        def board(client):
            headers = {"Authorization": f"Bearer {client.access_token}"}
            answer = raw(url, "GET", "/api/social/leaderboard", headers=headers).json()
            return answer["as_of"], {row["user_id"]: row for row in answer["accounts"]}

        as_of, rows = board(client_a)
        client_a.follow(b.user_id)
        again, seen_by_b = board(client_b)
        assert again == as_of and seen_by_b[b.user_id]["followers"] == 0  # the same ranking
        assert seen_by_b[b.user_id]["me"] and not seen_by_b[a.user_id]["me"]  # per reader
        time.sleep(2.1)
        later, rows = board(client_b)
        assert later > as_of and rows[b.user_id]["followers"] == 1


BAD_ORDERS = [
    ({"qty": -1}, "invalid_request"),
    ({"qty": 0}, "invalid_request"),
    ({"qty": math.nan}, "invalid_request"),
    ({"qty": math.inf}, "invalid_request"),
    ({"qty": "3"}, "invalid_request"),  # another type is refused, not converted
    ({"qty": True}, "invalid_request"),
    ({"rationale": "news\x00"}, "invalid_request"),  # PostgreSQL cannot store a NUL
    ({"symbol": "ZZZZ"}, "unknown_symbol"),
    ({"notional": 100}, "invalid_request"),  # with qty too: both given
    ({"client_order_id": "x" * 49}, "invalid_request"),
    ({"side": "sell", "qty": 5}, "insufficient_position"),
    ({"side": "short"}, "invalid_request"),
    ({"extra": 1}, "invalid_request"),
]


def test_bad_orders_are_refused_with_the_error_body_and_change_nothing(controller):
    _, client = new_agent(controller)
    url, token = controller.base_url, client.access_token
    before = client.portfolio()
    for change, code in BAD_ORDERS:
        body = {"client_order_id": "bad-1", "symbol": "AAPL", "side": "buy", "qty": 1, **change}
        content = json.dumps(body).encode()  # NaN and Infinity as Python's json writes them
        response = raw(
            url,
            "POST",
            "/api/trading/submit",
            content=content,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, (change, response.text)
        assert response.json()["error"]["code"] == code, change
        assert response.json()["error"]["message"]
    malformed = raw(
        url,
        "POST",
        "/api/trading/submit",
        content=b"{not json",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_request"
    auth = {"Authorization": f"Bearer {token}"}
    for method, path, body in [
        ("POST", "/api/subscriptions", {"user_id": "u-\x00"}),
        ("DELETE", "/api/subscriptions/u%00", None),
    ]:
        response = raw(url, method, path, json=body, headers=auth)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
    assert client.portfolio() == before
    assert client.orders() == []


def test_wrong_controller_key_and_bad_bodies_create_no_account(controller):
    url = controller.base_url
    body = {"idempotency_key": "k", "display_name": "A", "profile": {}}
    for headers in ({}, {"X-Controller-Key": "wrong"}):
        response = raw(url, "POST", "/api/controller/create-agent", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_controller_key"
    good = {"X-Controller-Key": CONTROLLER_KEY}
    for bad in (
        {**body, "starting_cash": -5},
        {**body, "idempotency_key": ""},
        {"profile": {}},
        {**body, "idempotency_key": "k\x00"},
        {**body, "display_name": "A\x00"},
    ):
        response = raw(url, "POST", "/api/controller/create-agent", json=bad, headers=good)
        assert response.status_code == 422, bad
    for path in ("/api/controller/agents/u%00/retire", "/api/controller/agents/u.x/retire"):
        response = raw(url, "POST", path, headers=good)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
    login = raw(url, "POST", "/api/auth/login", json={"username": "a\x00", "password": "b"})
    assert login.status_code == 422
    response = raw(
        url,
        "POST",
        "/api/controller/create-agent",
        content=b"[",
        headers={**good, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert controller.controller_agents() == []
    with pytest.raises(AuthError):
        PlatformClient(url, controller_key="wrong", deadline=2).create_agent("k", "A")


def test_expired_token_is_refused_and_the_session_logs_in_again(database_url):
    app = create_sandbox_app(sandbox_config(database_url, token_ttl_seconds=1))
    with serve(app) as url:
        controller = PlatformClient(url, controller_key=CONTROLLER_KEY, deadline=5)
        creds = controller.create_agent("k", "A")
        client = PlatformClient(url, deadline=5)
        session = TradingSession(client, creds.username, creds.password)
        session.login()
        first_token = client.access_token
        import time

        time.sleep(2.1)
        with pytest.raises(AuthError) as err:
            client.portfolio()
        assert err.value.code == "token_expired"
        assert session.call(client.portfolio).cash == 100_000
        assert client.access_token != first_token


def test_sandbox_rate_limits_per_token_with_retry_after(database_url):
    app = create_sandbox_app(sandbox_config(database_url, rate_per_second=0.5, rate_burst=2))
    with serve(app) as url:
        controller = PlatformClient(url, controller_key=CONTROLLER_KEY, deadline=5)
        creds = controller.create_agent("k", "A")
        token = PlatformClient(url).login(creds.username, creds.password).access_token
        headers = {"Authorization": f"Bearer {token}"}
        codes = [raw(url, "GET", "/api/trading/portfolio", headers=headers) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert codes[2].headers["Retry-After"] == "2"
        assert codes[2].json()["error"]["code"] == "rate_limited"


def test_lost_replies_are_retried_into_exactly_one_account_and_one_fill(controller):
    sandbox = controller.base_url
    drops = {"POST /api/controller/create-agent": 1, "POST /api/trading/submit": 1}

    def drop(request_line):
        key = request_line.rsplit(" ", 1)[0]
        if drops.get(key, 0) > 0:
            drops[key] -= 1
            return True
        return False

    with DroppingProxy(sandbox, drop) as proxy:
        via_proxy = PlatformClient(proxy.url, controller_key=CONTROLLER_KEY, deadline=10)
        creds = via_proxy.create_agent("lossy", "Lossy")
        via_proxy.login(creds.username, creds.password)
        order = via_proxy.submit_order("lossy-1", "NVDA", "buy", qty=3)
        assert proxy.dropped == [
            "POST /api/controller/create-agent HTTP/1.1",
            "POST /api/trading/submit HTTP/1.1",
        ]
    assert order.replayed and order.status == "filled"
    assert len(controller.controller_agents()) == 1
    direct = PlatformClient(sandbox)
    direct.login(creds.username, creds.password)
    assert [o.client_order_id for o in direct.orders()] == ["lossy-1"]
    assert direct.portfolio().positions[0].qty == 3


def test_openapi_document_describes_every_endpoint(sandbox_url):
    paths = raw(sandbox_url, "GET", "/openapi.json").json()["paths"]
    assert {
        "/api/controller/create-agent",
        "/api/controller/agents/{user_id}/retire",
        "/api/controller/agents",
        "/api/auth/login",
        "/api/trading/submit",
        "/api/trading/orders",
        "/api/trading/portfolio",
        "/api/subscriptions",
        "/api/subscriptions/{followee_id}",
        "/api/social/leaderboard",
        "/api/social/feed",
    } <= set(paths)
