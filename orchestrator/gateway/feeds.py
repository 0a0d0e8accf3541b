"""The gateway's shared data plane: one upstream call serves the whole fleet.

Per (kind, provider, symbol) a TTL cache, its TTLs counted in market time (on a sped-up
simulated market a wall minute is days of news); concurrent misses for the same symbol
wait on one in-flight upstream call (single-flight), and the misses of one request go
upstream as one batch when the provider can. Every upstream call passes a per-provider
limiter — requests per minute, and a daily quota counted in the store so it survives a
restart. When the provider fails or the limiter says no, the last value is served with
`stale: true`; only when there is none does the request fail. News is scored here, once
per item: the provider's own score wins, else the learned headline scorer. A provider's
text is untrusted: each item's headline is kept up to what the scorer reads, its summary
up to `SUMMARY_CHARACTERS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_runtime.contract import without_nul
from feeds.clock import MarketClock
from feeds.scorer import score_many
from feeds.sentiment import MAX_CHARACTERS, Sentiment, label_for
from feeds.sources import NewsItem, NewsSource, ProviderError, QuoteSource
from feeds.universe import UNIVERSE
from orchestrator.state.usage import UsageLedger

log = logging.getLogger("fleet.feeds")

NEWS_LOOKBACK = timedelta(days=3)
MIN_TTL = 0.1  # wall seconds a fetch is served for, however fast the market runs
SUMMARY_CHARACTERS = 2000  # a longer summary is served up to here


class FeedUnavailable(Exception):
    """Nothing fresh or stale can be served; the message says why."""


@dataclass
class ProviderLimit:
    """Requests per minute and per UTC day (0 = unlimited)."""

    per_minute: int = 0
    per_day: int = 0


@dataclass
class _Entry:
    value: Any
    fetched: float  # monotonic seconds


@dataclass
class Counters:
    """What the data plane did, for operators."""

    upstream: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    agents: Counter[str] = field(default_factory=Counter)


class _Limiter:
    """Per-provider minute bucket in memory, daily quota in the store."""

    def __init__(
        self, table: UsageLedger, limits: dict[str, ProviderLimit], wall: Callable[[], float]
    ) -> None:
        self.table = table
        self.limits = limits
        self.wall = wall
        self._minute: dict[str, list[float]] = {}

    @staticmethod
    def _day(moment: float) -> str:
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")

    def remaining_today(self, provider: str) -> int | None:
        limit = self.limits.get(provider, ProviderLimit())
        if not limit.per_day:
            return None
        return max(0, limit.per_day - self.table.provider_calls(provider, self._day(self.wall())))

    def acquire(self, provider: str) -> str | None:
        """Count one upstream call, or say why it may not be made."""
        limit = self.limits.get(provider, ProviderLimit())
        now = self.wall()
        recent = [t for t in self._minute.get(provider, []) if now - t < 60]
        if limit.per_minute and len(recent) >= limit.per_minute:
            return f"{provider} allows {limit.per_minute} requests per minute"
        if limit.per_day and self.remaining_today(provider) == 0:
            return f"{provider}'s daily quota of {limit.per_day} requests is used up"
        self._minute[provider] = [*recent, now]
        self.table.count_provider_call(provider, self._day(now))
        return None


class Readings:
    """The learned scorer's reading of each headline, scored once and many at a time;
    the latest `size` are kept."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._read: OrderedDict[str, Sentiment] = OrderedDict()

    def of(self, headlines: Sequence[str]) -> dict[str, Sentiment]:
        """A reading for each of `headlines`."""
        new = [h for h in dict.fromkeys(headlines) if h not in self._read]
        self._read.update(zip(new, score_many(new), strict=True))
        for headline in headlines:
            self._read.move_to_end(headline)
        while len(self._read) > self.size:
            self._read.popitem(last=False)
        return {h: self._read[h] for h in headlines}


def _bounded(item: NewsItem) -> NewsItem:
    """`item` with its headline cut to what the scorer reads and its summary to
    `SUMMARY_CHARACTERS`, and each NUL in its text made U+FFFD: an agent records the ids
    it read, and the orchestrator refuses a record holding a NUL (PostgreSQL cannot keep
    one)."""
    text = (item.id, item.headline, item.summary, item.source)
    if (
        len(item.headline) <= MAX_CHARACTERS
        and len(item.summary) <= SUMMARY_CHARACTERS
        and not any("\x00" in t for t in text)
    ):
        return item
    return replace(
        item,
        id=without_nul(item.id),
        headline=without_nul(item.headline[:MAX_CHARACTERS]),
        summary=without_nul(item.summary[:SUMMARY_CHARACTERS]),
        source=without_nul(item.source),
    )


def _scored(item: NewsItem, symbols: frozenset[str], ours: Sentiment) -> dict:
    """An item for a request about `symbols`: the provider's score for those symbols,
    weighted by relevance, wins over the learned scorer's reading, `ours`."""
    rated = [(s, r) for sym, s, r in item.ticker_scores if sym in symbols]
    weight = sum(r for _, r in rated)
    if rated and weight > 0:
        value = sum(s * r for s, r in rated) / weight
        label, relevance = label_for(value, 0.15), max(r for _, r in rated)
    else:
        value, label, relevance = ours.score, ours.label, 1.0
    return {
        "id": item.id,
        "published_at": item.published_at.isoformat(),
        "headline": item.headline,
        "summary": item.summary,
        "source": item.source,
        "symbols": list(item.symbols),
        "sentiment": {"score": round(value, 4), "label": label, "relevance": relevance},
        "event_type": ours.event_type,
    }


class FeedGateway:
    """Cached, limited, shared access to one news source and one quote source."""

    def __init__(
        self,
        news_source: NewsSource,
        quote_source: QuoteSource,
        usage: UsageLedger,
        clock: MarketClock,
        *,
        news_ttl: float = 60,
        quote_ttl: float = 10,
        limits: dict[str, ProviderLimit] | None = None,
        universe: Sequence[str] = tuple(s.symbol for s in UNIVERSE),
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.news_source = news_source
        self.quote_source = quote_source
        self.clock = clock
        self.universe = universe
        ttl = {"news": news_ttl, "quotes": quote_ttl}  # market seconds
        self.ttl = {kind: max(MIN_TTL, t / clock.time_scale) for kind, t in ttl.items()}
        self.monotonic = monotonic
        self.limiter = _Limiter(usage, limits or {}, wall)
        self.usage = Counters()
        self.readings = Readings()
        self._cache: dict[tuple[str, str, str], _Entry] = {}
        self._in_flight: dict[tuple[str, str, str], asyncio.Future] = {}
        self._last_error: dict[str, str] = {}

    # -- public -------------------------------------------------------------

    async def news(self, agent_id: str, symbols: Sequence[str], since: datetime) -> dict:
        """Scored news about `symbols` after `since`, newest first."""
        self.usage.agents[agent_id] += 1
        values, stale = await self._get("news", self.news_source.name, symbols)
        items = {i.id: i for batch in values for i in batch if i.published_at > since}
        ordered = sorted(items.values(), key=lambda i: i.published_at, reverse=True)[:100]
        wanted = frozenset(s.upper() for s in symbols)
        readings = self.readings.of([i.headline for i in ordered])
        return {
            "items": [_scored(i, wanted, readings[i.headline]) for i in ordered],
            "stale": stale,
            "provider": self.news_source.name,
        }

    async def quotes(self, agent_id: str, symbols: Sequence[str]) -> dict:
        """Latest quotes of `symbols`."""
        self.usage.agents[agent_id] += 1
        values, stale = await self._get("quotes", self.quote_source.name, symbols)
        quotes = [
            {"symbol": q.symbol, "price": q.price, "as_of": q.as_of.isoformat()}
            for q in values
            if q is not None
        ]
        return {"quotes": quotes, "stale": stale, "provider": self.quote_source.name}

    @property
    def providers(self) -> list[str]:
        """The names of the providers news and quotes come from."""
        return sorted({self.news_source.name, self.quote_source.name})

    def report(self) -> dict:
        """Counters and quota left, per provider and per agent."""
        u = self.usage
        lookups = sum(u.hits.values()) + sum(u.misses.values())
        return {
            "providers": {
                p: {
                    "upstream_calls": u.upstream[p],
                    "cache_hits": u.hits[p],
                    "stale_served": u.stale[p],
                    "errors": u.errors[p],
                    "quota_left_today": self.limiter.remaining_today(p),
                }
                for p in self.providers
            },
            "cache_hit_ratio": round(sum(u.hits.values()) / lookups, 4) if lookups else None,
            "requests_by_agent": dict(u.agents),
        }

    # -- cache, single-flight, limiter --------------------------------------

    async def _get(self, kind: str, provider: str, symbols: Sequence[str]) -> tuple[list, bool]:
        keys = [(kind, provider, s.upper()) for s in dict.fromkeys(symbols)]
        now = self.monotonic()
        fresh = {
            k: e for k in keys if (e := self._cache.get(k)) and now - e.fetched < self.ttl[kind]
        }
        waiting = {k: self._in_flight[k] for k in keys if k not in fresh and k in self._in_flight}
        mine = [k for k in keys if k not in fresh and k not in waiting]
        # A symbol someone else is already fetching costs no upstream call: it counts as a hit.
        self.usage.hits[provider] += len(fresh) + len(waiting)
        self.usage.misses[provider] += len(mine)
        if mine and (kind == "news" or self.quote_source.batch):
            # One batch call costs what one symbol costs: refresh every stale symbol of the
            # universe with it, so the next agents' requests find them cached.
            mine += [k for k in self._universe_keys(kind, provider, now) if k not in keys]
        if mine:
            await self._fetch(kind, provider, mine)
        for future in waiting.values():
            # A failure was recorded by the request that owns the call; fall back to stale.
            with contextlib.suppress(ProviderError):
                await asyncio.shield(future)
        values, stale, missing = [], False, []
        for key in keys:
            entry = self._cache.get(key)
            if entry is None:
                missing.append(key[2])
                continue
            values.append(entry.value)
            stale |= self.monotonic() - entry.fetched >= self.ttl[kind]
        if missing and not values:
            why = self._last_error.get(provider, "the provider returned nothing")
            raise FeedUnavailable(f"no {kind} for {', '.join(missing)} right now ({why})")
        if stale:
            self.usage.stale[provider] += 1
        return values, stale

    def _universe_keys(self, kind: str, provider: str, now: float) -> list[tuple[str, str, str]]:
        keys = [(kind, provider, s) for s in self.universe]
        return [
            k
            for k in keys
            if k not in self._in_flight
            and ((e := self._cache.get(k)) is None or now - e.fetched >= self.ttl[kind])
        ]

    async def _fetch(self, kind: str, provider: str, keys: list[tuple[str, str, str]]) -> None:
        loop = asyncio.get_running_loop()
        futures = {k: loop.create_future() for k in keys}
        self._in_flight.update(futures)
        symbols = [k[2] for k in keys]
        try:
            if kind == "news":
                since = self.clock.now() - NEWS_LOOKBACK
                given = await self._call(provider, self.news_source.news, symbols, since)
                items = [_bounded(i) for i in given]
                found = {k: [i for i in items if k[2] in i.symbols] for k in keys}
            elif self.quote_source.batch:
                quotes = await self._call(provider, self.quote_source.quotes, symbols)
                by_symbol = {q.symbol: q for q in quotes}
                found = {k: by_symbol.get(k[2]) for k in keys}
            else:
                found = {}
                for key in keys:
                    quotes = await self._call(provider, self.quote_source.quotes, [key[2]])
                    found[key] = quotes[0] if quotes else None
        except ProviderError as exc:
            self.usage.errors[provider] += 1
            self._last_error[provider] = str(exc)
            log.warning("%s %s unavailable, serving what is cached: %s", provider, kind, exc)
            for future in futures.values():
                future.set_exception(exc)
                future.exception()  # retrieved: waiters fall back to stale data
            return
        finally:
            for key in keys:
                self._in_flight.pop(key, None)
        fetched = self.monotonic()
        for key, value in found.items():
            self._cache[key] = _Entry(value, fetched)
            futures[key].set_result(None)

    async def _call(self, provider: str, fn: Callable[..., Any], *args: Any) -> Any:
        refusal = await asyncio.to_thread(self.limiter.acquire, provider)
        if refusal is not None:
            raise ProviderError(provider, refusal)
        self.usage.upstream[provider] += 1
        return await asyncio.to_thread(fn, *args)
