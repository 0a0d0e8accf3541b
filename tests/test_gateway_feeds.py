"""The daemon's feed endpoints over HTTP, and agents that stay thin."""

import json
import subprocess
import sys
from datetime import datetime, timedelta

from feeds.market import SimulatedMarket
from feeds.universe import UNIVERSE


def running(n):
    return lambda agents: len(agents) == n and all(a["phase"] == "running" for a in agents)


def test_agents_read_universe_quotes_and_scored_news_of_the_simulated_market(make_daemon):
    daemon = make_daemon(FLEET_MARKET_SEED="7")
    daemon.fleet("spawn", "1")
    (agent,) = daemon.wait_for(running(1), "a running agent")
    token = daemon.agent_token(agent["id"])

    universe = daemon.api("GET", "/v1/feed/universe", token=token).json()["symbols"]
    assert len(universe) == len(UNIVERSE) and {"symbol", "sector", "market_cap"} <= set(universe[0])

    quotes = daemon.api("GET", "/v1/feed/quotes?symbols=AAPL,msft", token=token).json()
    market = SimulatedMarket(7)
    for q in quotes["quotes"]:  # the same prices the sandbox fills at
        assert q["price"] == market.price(q["symbol"], datetime.fromisoformat(q["as_of"]))
    assert [q["symbol"] for q in quotes["quotes"]] == ["AAPL", "MSFT"]

    symbols = ",".join(s.symbol for s in UNIVERSE[:30])
    since = (datetime.fromisoformat(quotes["quotes"][0]["as_of"]) - timedelta(days=3)).isoformat()
    news = daemon.api(
        "GET", "/v1/feed/news", token=token, params={"symbols": symbols, "since": since}
    ).json()
    assert news["provider"] == "simulated" and not news["stale"] and news["items"]
    for item in news["items"]:
        assert -1 <= item["sentiment"]["score"] <= 1
        assert item["sentiment"]["label"] in ("positive", "negative", "neutral")
        assert item["symbols"][0] in symbols
    assert any(item["event_type"] for item in news["items"])

    usage = daemon.api("GET", "/v1/fleet").json()["feeds"]
    assert usage["requests_by_agent"] == {agent["id"]: 2}


def test_feed_endpoints_refuse_bad_input_and_strangers(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "1")
    (agent,) = daemon.wait_for(running(1), "a running agent")
    token = daemon.agent_token(agent["id"])
    bad = daemon.api("GET", "/v1/feed/quotes?symbols=AAPL,ZZZZ", token=token)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_symbol"
    assert "ZZZZ" in bad.json()["error"]["message"]
    naive = daemon.api("GET", "/v1/feed/news?symbols=AAPL&since=2026-01-01T00:00", token=token)
    assert naive.status_code == 422
    for path in ("/v1/feed/quotes?symbols=AAPL", "/v1/feed/universe"):
        assert daemon.api("GET", path, token="").status_code == 401
        assert daemon.api("GET", path, token="stolen").status_code == 401
        assert daemon.api("GET", path).status_code == 401  # the operator token is not an agent's


def test_a_provider_without_its_key_is_unavailable_and_the_daemon_keeps_serving(make_daemon):
    daemon = make_daemon(FLEET_NEWS_PROVIDER="newsapi")
    daemon.fleet("spawn", "1")
    (agent,) = daemon.wait_for(running(1), "a running agent")
    response = daemon.api(
        "GET", "/v1/feed/news?symbols=AAPL", token=daemon.agent_token(agent["id"])
    )
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "feed_unavailable",
        "message": "no news for AAPL right now (newsapi: FLEET_NEWSAPI_KEY is not set)",
    }
    assert daemon.api("GET", "/healthz").status_code == 200
    assert daemon.api("GET", "/v1/fleet").json()["feeds"]["providers"]["newsapi"]["errors"] == 1


def test_llm_assess_without_a_key_abstains_and_refuses_bad_bodies(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "1")
    (agent,) = daemon.wait_for(running(1), "a running agent")
    token = daemon.agent_token(agent["id"])
    body = {"symbols": ["AAPL"], "headlines": [{"symbol": "AAPL", "headline": "Apple beats"}]}
    answer = daemon.api("POST", "/v1/llm/assess", token=token, json=body)
    assert answer.json() == {"abstained": True, "reason": "unconfigured"}
    for bad in ({"symbols": []}, {**body, "extra": 1}, {"symbols": ["AAPL"] * 21}):
        assert daemon.api("POST", "/v1/llm/assess", token=token, json=bad).status_code == 422
    assert daemon.api("POST", "/v1/llm/assess", token="nope", json=body).status_code == 401


def test_the_agent_runtime_imports_no_vendor_sdk():
    code = (
        "import sys, json, datetime; import agent_runtime.main, agent_runtime.account;"
        "from feeds.calendar import calendar_for;"  # an agent on the NYSE's hours, at work
        "calendar_for('nyse').next_change(datetime.datetime.now(datetime.UTC));"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    heavy = {
        "anthropic",
        "alpaca",
        "alpha_vantage",
        "newsapi",
        "pandas",
        "numpy",
        "pydantic",
        "requests",
        "vaderSentiment",
        "fastapi",
        "sqlalchemy",
        "docker",
        "httpx",  # 9.7 MiB an agent: the platform client speaks HTTP on the stdlib's sockets
        "holidays",  # 15 MiB on the NYSE's hours: the calendar computes the exchange's rules
        "dataclasses",  # with `inspect`, 6 ms of every agent's start, and 0.5 ms a class
        "inspect",
    }
    assert loaded & heavy == set()
    assert {"agent_runtime", "platform_client"} <= loaded
