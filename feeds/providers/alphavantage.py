"""Alpha Vantage over httpx: GLOBAL_QUOTE for prices, NEWS_SENTIMENT for scored news.

The `alpha_vantage` package is not used: it calls without a timeout and keeps its base
URL in a class attribute. Alpha Vantage answers a rate limit or an exhausted daily quota
with HTTP 200 and a `Note` or `Information` body; those become ProviderRateLimited.
Each news item keeps the `ticker_sentiment_score` and `relevance_score` of every ticker
it was asked about; the gateway weighs them for the symbols a request names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from feeds.sources import (
    NewsItem,
    ProviderAuthError,
    ProviderFailed,
    ProviderRateLimited,
    ProviderUnavailable,
    Quote,
)

DEFAULT_URL = "https://www.alphavantage.co"


class AlphaVantageSource:
    """Quotes and news from Alpha Vantage; one quote per call (no batch on free keys)."""

    name = "alphavantage"
    batch = False

    def __init__(self, api_key: str | None, base_url: str = DEFAULT_URL, timeout: float = 10):
        self.api_key = api_key
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def _query(self, **params: str) -> dict:
        if not self.api_key:
            raise ProviderUnavailable(self.name, "FLEET_ALPHAVANTAGE_KEY is not set")
        try:
            response = self._http.get("/query", params={**params, "apikey": self.api_key})
        except httpx.HTTPError as exc:
            raise ProviderFailed(self.name, type(exc).__name__) from None
        if response.status_code == 429:
            raise ProviderRateLimited(self.name, "HTTP 429")
        if response.status_code != 200:
            raise ProviderFailed(self.name, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ProviderFailed(self.name, "the answer is not JSON") from None
        for key in ("Note", "Information"):
            if key in body:
                raise ProviderRateLimited(self.name, str(body[key])[:200])
        if "Error Message" in body:
            message = str(body["Error Message"])[:200]
            if "apikey" in message.lower():
                raise ProviderAuthError(self.name, message)
            raise ProviderFailed(self.name, message)
        return body

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """GLOBAL_QUOTE for each symbol."""
        found = []
        for symbol in symbols:
            data = self._query(function="GLOBAL_QUOTE", symbol=symbol).get("Global Quote") or {}
            try:
                day = datetime.strptime(data["07. latest trading day"], "%Y-%m-%d")
                found.append(
                    Quote(data["01. symbol"], float(data["05. price"]), day.replace(tzinfo=UTC))
                )
            except (KeyError, ValueError):
                continue  # unknown symbol: Alpha Vantage answers an empty quote
        return found

    def news(self, symbols: Sequence[str], since: datetime) -> list[NewsItem]:
        """NEWS_SENTIMENT for the tickers since `since`."""
        wanted = {s.upper() for s in symbols}
        body = self._query(
            function="NEWS_SENTIMENT",
            tickers=",".join(sorted(wanted)),
            time_from=since.astimezone(UTC).strftime("%Y%m%dT%H%M"),
            sort="LATEST",
            limit="200",
        )
        return [item for raw in body.get("feed", []) if (item := _item(raw, wanted))]

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def _item(raw: dict, wanted: set[str]) -> NewsItem | None:
    scores = tuple(
        (
            t["ticker"],
            max(-1.0, min(1.0, float(t["ticker_sentiment_score"]))),
            float(t["relevance_score"]),
        )
        for t in raw.get("ticker_sentiment", [])
        if t.get("ticker") in wanted
    )
    if not scores or not raw.get("title"):
        return None
    published = datetime.strptime(raw["time_published"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return NewsItem(
        id=raw.get("url") or raw["title"],
        published_at=published,
        headline=raw["title"],
        summary=raw.get("summary") or "",
        source=raw.get("source") or "alphavantage",
        symbols=tuple(ticker for ticker, _, _ in scores),
        ticker_scores=scores,
    )
