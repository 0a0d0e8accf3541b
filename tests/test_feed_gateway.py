"""The shared data plane: single-flight, TTL cache, quotas that survive restarts, stale data."""

import asyncio
from datetime import UTC, datetime

import pytest

from feeds.clock import MarketClock
from feeds.providers.alphavantage import AlphaVantageSource
from feeds.providers.newsapi import NewsApiSource
from orchestrator.gateway.feeds import FeedGateway, FeedUnavailable, ProviderLimit
from orchestrator.state.usage import UsageLedger
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp, payload

SINCE = datetime(2024, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def vendor():
    app = ScriptedApp(delay=0.3)
    with serve(app) as url:
        yield url, app


def gateway(store, news=None, quotes=None, monotonic=None, scale=1.0, **limits):
    source = news or quotes
    return FeedGateway(
        news or source,
        quotes or source,
        UsageLedger(store),
        MarketClock(scale),
        news_ttl=60,
        quote_ttl=10,
        monotonic=monotonic or Clock(),
        limits={k: ProviderLimit(**v) for k, v in limits.items()},
    )


def test_fifty_concurrent_agents_asking_for_the_same_news_make_one_upstream_call(store, vendor):
    url, app = vendor
    app.on("/v2/everything", (200, payload("newsapi_everything.json"), {}))
    gw = gateway(store, news=NewsApiSource("k", base_url=url))

    async def fleet():
        return await asyncio.gather(
            *(gw.news(f"agent-{i}", ["AAPL", "MSFT"], SINCE) for i in range(50))
        )

    answers = asyncio.run(fleet())
    assert app.hits("/v2/everything") == 1
    assert all(a == answers[0] for a in answers) and not answers[0]["stale"]
    headlines = [i["headline"] for i in answers[0]["items"]]
    assert headlines == [
        "Apple beats quarterly revenue estimates on strong iPhone demand",
        "Microsoft cuts 1,000 jobs in its mixed reality and Azure teams",
    ]
    first = answers[0]["items"][0]
    assert first["sentiment"]["label"] == "positive" and first["event_type"] == "earnings"
    report = gw.report()
    assert report["providers"]["newsapi"]["upstream_calls"] == 1
    assert len(report["requests_by_agent"]) == 50


def test_daily_quota_stops_upstream_calls_serves_stale_and_survives_a_restart(store, vendor):
    url, app = vendor
    app.on("/query", (200, payload("av_global_quote.json"), {}))
    clock = Clock()
    source = AlphaVantageSource("k", base_url=url)
    gw = gateway(store, quotes=source, monotonic=clock, alphavantage={"per_day": 2})

    assert asyncio.run(gw.quotes("a", ["AAPL"]))["quotes"][0]["price"] == 226.34
    asyncio.run(gw.quotes("a", ["MSFT"]))
    assert app.hits("/query") == 2
    with pytest.raises(FeedUnavailable, match="daily quota of 2 requests is used up"):
        asyncio.run(gw.quotes("a", ["XOM"]))  # nothing cached, quota gone
    clock.t += 11  # AAPL's entry is now past its TTL
    stale = asyncio.run(gw.quotes("a", ["AAPL"]))
    assert stale["stale"] and stale["quotes"][0]["price"] == 226.34
    assert app.hits("/query") == 2
    assert gw.report()["providers"]["alphavantage"]["quota_left_today"] == 0

    restarted = gateway(store, quotes=source, monotonic=Clock(), alphavantage={"per_day": 2})
    with pytest.raises(FeedUnavailable):
        asyncio.run(restarted.quotes("a", ["AAPL"]))
    assert app.hits("/query") == 2  # the quota was remembered by the store


def test_provider_errors_are_served_stale_and_counted(store, vendor):
    url, app = vendor
    app.on("/query", (200, payload("av_global_quote.json"), {}), (200, payload("av_note.json"), {}))
    clock = Clock()
    gw = gateway(store, quotes=AlphaVantageSource("k", base_url=url), monotonic=clock)
    asyncio.run(gw.quotes("a", ["IBM"]))
    clock.t += 30
    answer = asyncio.run(gw.quotes("a", ["IBM"]))
    assert answer["stale"] and answer["quotes"][0]["symbol"] == "IBM"
    assert gw.report()["providers"]["alphavantage"]["errors"] == 1


def test_a_providers_overlong_text_is_cut_before_it_is_scored_or_served(store, vendor):
    """News text is untrusted: a 66,000-character title is kept, scored and served up to
    the scorer's 1,000 characters, a 50,000-character description up to 2,000; a NUL,
    which an agent's decision record could not carry, is served as U+FFFD."""
    url, app = vendor
    body = payload("newsapi_everything.json")
    first = body["articles"][0]
    first["title"] = "Apple beats estimates " * 3000  # the tail past 1,000 is never read
    first["description"] = "x\x00" * 25_000
    first["url"] += "\x00"
    app.on("/v2/everything", (200, body, {}))
    gw = gateway(store, news=NewsApiSource("k", base_url=url))
    items = asyncio.run(gw.news("a", ["AAPL", "MSFT"], SINCE))["items"]
    (apple,) = [i for i in items if i["headline"].startswith("Apple beats estimates")]
    assert len(apple["headline"]) == 1000 and len(apple["summary"]) == 2000
    assert apple["summary"][:2] == "x\ufffd" and apple["id"].endswith("\ufffd")
    assert not any("\x00" in v for i in items for v in i.values() if isinstance(v, str))
    assert apple["event_type"] == "earnings"
    assert "Microsoft cuts 1,000 jobs" in {i["headline"][:25] for i in items}


def test_provider_sentiment_takes_precedence(store, vendor):
    url, app = vendor
    app.on("/query", (200, payload("av_news_sentiment.json"), {}))
    gw = gateway(store, news=AlphaVantageSource("k", base_url=url))
    (item,) = asyncio.run(gw.news("a", ["AAPL"], SINCE))["items"]
    assert item["sentiment"] == {"score": 0.4, "label": "positive", "relevance": 0.6}
    (both,) = [
        i
        for i in asyncio.run(gw.news("b", ["AAPL", "MSFT"], SINCE))["items"]
        if "MSFT" in i["symbols"]
    ]
    expected = (0.4 * 0.6 - 0.2 * 0.2) / 0.8  # relevance-weighted over the asked tickers
    assert both["sentiment"]["score"] == pytest.approx(expected, abs=1e-4)


def test_cache_serves_repeat_requests_within_the_ttl(store, vendor):
    url, app = vendor
    app.on("/query", (200, payload("av_global_quote.json"), {}))
    clock = Clock()
    gw = gateway(store, quotes=AlphaVantageSource("k", base_url=url), monotonic=clock)
    for _ in range(5):
        asyncio.run(gw.quotes("a", ["IBM"]))
    clock.t += 11
    asyncio.run(gw.quotes("a", ["IBM"]))
    assert app.hits("/query") == 2
    assert gw.report()["cache_hit_ratio"] == pytest.approx(4 / 6, abs=1e-4)


@pytest.mark.parametrize(
    "scale, within, past",
    [
        (50, 0.15, 0.25),  # 10 market seconds at 50x: a fetched quote serves 0.2 wall seconds
        (4320, 0.05, 0.11),  # 2.3 ms at 4320x, but a fetch serves a tenth of a wall second
    ],
)
def test_a_sped_up_markets_ttl_counts_market_seconds_and_a_tenth_of_a_second_at_least(
    store, vendor, scale, within, past
):
    url, app = vendor
    app.on("/query", (200, payload("av_global_quote.json"), {}))
    clock = Clock()
    gw = gateway(store, quotes=AlphaVantageSource("k", base_url=url), monotonic=clock, scale=scale)
    asyncio.run(gw.quotes("a", ["IBM"]))
    clock.t += within
    asyncio.run(gw.quotes("a", ["IBM"]))
    assert app.hits("/query") == 1
    clock.t += past - within
    asyncio.run(gw.quotes("a", ["IBM"]))
    assert app.hits("/query") == 2
