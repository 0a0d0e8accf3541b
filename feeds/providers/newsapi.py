"""NewsAPI (newsapi-python): `/v2/everything` for the universe's company names.

NewsAPI searches text, not tickers, so the query names the companies and each article is
mapped back to the symbols whose company it mentions. The SDK has one fixed host; a
session that rebases its URLs points it elsewhere (tests, proxies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import requests
from newsapi import NewsApiClient
from newsapi.newsapi_exception import NewsAPIException

from feeds.sources import (
    NewsItem,
    ProviderAuthError,
    ProviderFailed,
    ProviderRateLimited,
    ProviderUnavailable,
)
from feeds.universe import security

DEFAULT_URL = "https://newsapi.org"
_AUTH_CODES = {"apiKeyInvalid", "apiKeyMissing", "apiKeyDisabled", "apiKeyExhausted"}
_SUFFIX = re.compile(
    r",? (Inc\.|Corporation|Corp\.|Co\.|Company|Holdings|Platforms|"
    r"Technologies|Enterprise|Group|& Co\.)+.*$"
)


def company(symbol: str) -> str:
    """The short company name NewsAPI matches on ("Apple Inc." → "Apple")."""
    sec = security(symbol)
    return _SUFFIX.sub("", sec.name).removeprefix("The ") if sec else symbol


class _Rebased(requests.Session):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method, url, *args, **kwargs):  # noqa: ANN001 - requests' signature
        kwargs["timeout"] = self.timeout
        return super().request(method, url.replace(DEFAULT_URL, self.base_url, 1), *args, **kwargs)


class NewsApiSource:
    """News from NewsAPI."""

    name = "newsapi"

    def __init__(self, api_key: str | None, base_url: str = DEFAULT_URL, timeout: float = 10):
        self.api_key = api_key
        self._session = _Rebased(base_url, timeout)
        self._client = NewsApiClient(api_key=api_key or "unset", session=self._session)

    def news(self, symbols: Sequence[str], since: datetime) -> list[NewsItem]:
        """Articles naming any of the symbols' companies since `since`."""
        if not self.api_key:
            raise ProviderUnavailable(self.name, "FLEET_NEWSAPI_KEY is not set")
        names = {s.upper(): company(s) for s in symbols if security(s)}
        query = " OR ".join(f'"{name}"' for name in names.values())
        try:
            body = self._client.get_everything(
                q=query,
                from_param=since.strftime("%Y-%m-%dT%H:%M:%S"),
                language="en",
                sort_by="publishedAt",
                page_size=100,
            )
        except NewsAPIException as exc:
            code, message = exc.get_code(), exc.get_message()
            if code in _AUTH_CODES:
                raise ProviderAuthError(self.name, f"{code}: {message}") from None
            if code == "rateLimited":
                raise ProviderRateLimited(self.name, f"{code}: {message}") from None
            raise ProviderFailed(self.name, f"{code}: {message}") from None
        except (requests.RequestException, ValueError) as exc:
            raise ProviderFailed(self.name, f"{type(exc).__name__}") from None
        return [item for a in body.get("articles", []) if (item := _item(a, names))]


def _item(article: dict, names: dict[str, str]) -> NewsItem | None:
    text = f"{article.get('title') or ''} {article.get('description') or ''}"
    symbols = tuple(sym for sym, name in names.items() if name.lower() in text.lower())
    if not symbols or not article.get("title") or not article.get("publishedAt"):
        return None
    return NewsItem(
        id=article.get("url") or article["title"],
        published_at=datetime.fromisoformat(article["publishedAt"].replace("Z", "+00:00")),
        headline=article["title"],
        summary=article.get("description") or "",
        source=(article.get("source") or {}).get("name") or "newsapi",
        symbols=symbols,
    )
