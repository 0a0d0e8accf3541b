"""Alpaca market data (alpaca-py): latest trades for prices, the news endpoint for news.

alpaca-py retries 429s itself and sends requests without a timeout; the adapter turns
both off (the gateway limits and retries, and a hung vendor must not hang a worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.historical.news import NewsClient
from alpaca.data.requests import NewsRequest, StockLatestTradeRequest
from requests.adapters import HTTPAdapter

from feeds.sources import (
    NewsItem,
    ProviderAuthError,
    ProviderFailed,
    ProviderRateLimited,
    ProviderUnavailable,
    Quote,
)


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return super().send(request, **kwargs)


def _bounded(client):  # noqa: ANN001 - any alpaca-py REST client
    client._retry = 0
    adapter = _TimeoutAdapter(10)
    client._session.mount("https://", adapter)
    client._session.mount("http://", adapter)
    return client


class AlpacaSource:
    """Quotes and news from Alpaca's market data API."""

    name = "alpaca"
    batch = True

    def __init__(self, key_id: str | None, secret: str | None, base_url: str | None = None):
        self.configured = bool(key_id and secret)
        if self.configured:
            self._stocks = _bounded(
                StockHistoricalDataClient(key_id, secret, url_override=base_url)
            )
            self._news = _bounded(NewsClient(key_id, secret, url_override=base_url))

    def _check(self) -> None:
        if not self.configured:
            raise ProviderUnavailable(
                self.name, "FLEET_ALPACA_KEY_ID / FLEET_ALPACA_SECRET_KEY not set"
            )

    def _error(self, exc: Exception) -> Exception:
        if isinstance(exc, APIError):
            status = exc.status_code
            message = f"HTTP {status}: {str(exc)[:160]}"
            if status in (401, 403):
                return ProviderAuthError(self.name, message)
            if status == 429:
                return ProviderRateLimited(self.name, message)
            return ProviderFailed(self.name, message)
        return ProviderFailed(self.name, type(exc).__name__)

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """Latest trade price of each symbol."""
        self._check()
        try:
            trades = self._stocks.get_stock_latest_trade(
                StockLatestTradeRequest(symbol_or_symbols=list(symbols))
            )
        except (APIError, requests.RequestException, ValueError) as exc:
            raise self._error(exc) from None
        return [Quote(symbol, float(t.price), t.timestamp) for symbol, t in trades.items()]

    def news(self, symbols: Sequence[str], since: datetime) -> list[NewsItem]:
        """News about the symbols since `since`."""
        self._check()
        try:
            result = self._news.get_news(
                NewsRequest(symbols=",".join(symbols), start=since, limit=50)
            )
        except (APIError, requests.RequestException, ValueError) as exc:
            raise self._error(exc) from None
        wanted = {s.upper() for s in symbols}
        return [
            NewsItem(
                id=str(n.id),
                published_at=n.created_at,
                headline=n.headline,
                summary=n.summary or "",
                source=n.source or "alpaca",
                symbols=tuple(s for s in n.symbols if s in wanted),
            )
            for n in result.data.get("news", [])
        ]
