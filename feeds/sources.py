"""The data plane's ports: `NewsSource` and `QuoteSource`, their items, and their errors.

A source fetches from one provider for a batch of symbols; it never caches, limits or
scores (the gateway does). Errors::

    ProviderError               a provider call failed; the message is safe to show
     ├── ProviderUnavailable    not configured (e.g. no API key): never called
     ├── ProviderAuthError      the provider refused the key
     ├── ProviderRateLimited    the provider says slow down (incl. Alpha Vantage's HTTP-200 notes)
     └── ProviderFailed         anything else: network, 5xx, an unreadable body
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ProviderError(Exception):
    """A provider call failed."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class ProviderUnavailable(ProviderError):
    """The provider is not configured."""


class ProviderAuthError(ProviderError):
    """The provider refused our key."""


class ProviderRateLimited(ProviderError):
    """The provider's rate limit or quota was hit."""


class ProviderFailed(ProviderError):
    """The call failed for another reason."""


@dataclass(frozen=True)
class NewsItem:
    """One news item as a provider gives it, with the provider's own per-ticker sentiment.

    `ticker_scores` holds (symbol, score −1..1, relevance 0..1) where the provider scores.
    """

    id: str
    published_at: datetime
    headline: str
    summary: str
    source: str
    symbols: tuple[str, ...]
    ticker_scores: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True)
class Quote:
    """The latest price of one symbol."""

    symbol: str
    price: float
    as_of: datetime


class NewsSource(Protocol):
    """Fetches news mentioning any of a batch of symbols."""

    name: str

    def news(self, symbols: Sequence[str], since: datetime) -> list[NewsItem]:
        """Items about `symbols` published after `since`."""
        ...


class QuoteSource(Protocol):
    """Fetches latest prices."""

    name: str
    batch: bool  # whether one call can fetch several symbols

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """Latest quotes of `symbols` (those the provider knows)."""
        ...
