"""Vendor adapters against their recorded payloads, served by a local HTTP server."""

from datetime import UTC, datetime

import pytest

from feeds.providers.alpaca import AlpacaSource
from feeds.providers.alphavantage import AlphaVantageSource
from feeds.providers.newsapi import NewsApiSource
from feeds.sources import (
    ProviderAuthError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp, payload

SINCE = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def vendor():
    app = ScriptedApp()
    with serve(app) as url:
        yield url, app


def test_newsapi_maps_articles_to_symbols_by_company(vendor):
    url, app = vendor
    app.on("/v2/everything", (200, payload("newsapi_everything.json"), {}))
    items = NewsApiSource("k-123", base_url=url).news(["AAPL", "MSFT", "XOM"], SINCE)
    assert [(i.symbols, i.source) for i in items] == [
        (("AAPL",), "Reuters"),
        (("MSFT",), "The Verge"),
    ]
    assert items[0].headline.startswith("Apple beats") and items[0].ticker_scores == ()
    assert items[0].published_at == datetime(2024, 8, 1, 20, 41, tzinfo=UTC)
    (seen,) = app.seen
    assert seen.query["q"] == '"Apple" OR "Microsoft" OR "Exxon Mobil"'
    assert seen.headers["authorization"] == "k-123"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (429, "newsapi_rate_limited.json", ProviderRateLimited),
        (401, "newsapi_key_invalid.json", ProviderAuthError),
    ],
)
def test_newsapi_error_shapes(vendor, status, body, error):
    url, app = vendor
    app.on("/v2/everything", (status, payload(body), {}))
    with pytest.raises(error) as err:
        NewsApiSource("k", base_url=url).news(["AAPL"], SINCE)
    assert err.value.message.startswith(payload(body)["code"])


def test_alphavantage_quote_and_weighted_ticker_sentiment(vendor):
    url, app = vendor
    app.on("/query", (200, payload("av_global_quote.json"), {}))
    (quote,) = AlphaVantageSource("k", base_url=url).quotes(["IBM"])
    assert (quote.symbol, quote.price) == ("IBM", 226.34)
    assert app.seen[0].query == {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": "k"}

    app.on("/query", (200, payload("av_news_sentiment.json"), {}))
    (item,) = AlphaVantageSource("k", base_url=url).news(["AAPL", "MSFT"], SINCE)
    assert item.symbols == ("AAPL", "MSFT")
    assert item.ticker_scores == (("AAPL", 0.4, 0.6), ("MSFT", -0.2, 0.2))
    assert app.seen[1].query["tickers"] == "AAPL,MSFT"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("av_note.json", ProviderRateLimited),
        ("av_information.json", ProviderRateLimited),
        ("av_error_apikey.json", ProviderAuthError),
    ],
)
def test_alphavantage_http_200_error_bodies(vendor, body, error):
    url, app = vendor
    app.on("/query", (200, payload(body), {}))
    with pytest.raises(error):
        AlphaVantageSource("k", base_url=url).quotes(["IBM"])


def test_alpaca_news_and_latest_trades(vendor):
    url, app = vendor
    app.on("/v1beta1/news", (200, payload("alpaca_news.json"), {}))
    app.on("/v2/stocks/trades/latest", (200, payload("alpaca_latest_trades.json"), {}))
    source = AlpacaSource("key-id", "secret", base_url=url)
    news = source.news(["AAPL", "TSLA"], SINCE)
    assert [(n.symbols, n.id) for n in news] == [(("AAPL",), "24843171"), (("TSLA",), "24843112")]
    quotes = {q.symbol: q.price for q in source.quotes(["AAPL", "MSFT"])}
    assert quotes == {"AAPL": 226.8, "MSFT": 416.06}
    assert app.seen[0].headers["apca-api-key-id"] == "key-id"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (429, "alpaca_429.json", ProviderRateLimited),
        (401, "alpaca_401.json", ProviderAuthError),
    ],
)
def test_alpaca_errors_are_mapped_without_retrying(vendor, status, body, error):
    url, app = vendor
    app.on("/v2/stocks/trades/latest", (status, payload(body), {}))
    with pytest.raises(error):
        AlpacaSource("key-id", "secret", base_url=url).quotes(["AAPL"])
    assert app.hits("/v2/stocks/trades/latest") == 1  # the gateway, not the SDK, retries


def test_providers_without_keys_are_unavailable_and_call_nothing(vendor):
    url, app = vendor
    for call in (
        lambda: NewsApiSource(None, base_url=url).news(["AAPL"], SINCE),
        lambda: AlphaVantageSource("", base_url=url).quotes(["AAPL"]),
        lambda: AlpacaSource(None, None, base_url=url).news(["AAPL"], SINCE),
    ):
        with pytest.raises(ProviderUnavailable):
            call()
    assert app.seen == []
