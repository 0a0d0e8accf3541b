"""Data-plane benchmark: 200 agents × 20 symbols × 50 cycles against a counting upstream.

Every simulated agent asks the feed gateway for news and quotes of its own 20 symbols
once per cycle. The upstream is a real HTTP server on 127.0.0.1 serving recorded NewsAPI
and Alpaca payloads and counting calls; the gateway's TTL clock is advanced one cycle at
a time (10 s per cycle), so fifty cycles take seconds, not minutes. Latency is measured
per gateway call in-process (the HTTP hop from agent to daemon is not included).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.figures import Figure
from feeds.clock import MarketClock
from feeds.providers.alpaca import AlpacaSource
from feeds.providers.newsapi import NewsApiSource
from feeds.universe import UNIVERSE
from orchestrator.gateway.feeds import FeedGateway
from orchestrator.state.db import open_store
from orchestrator.state.usage import UsageLedger
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp, payload

CYCLE_SECONDS = 10.0
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _trades() -> dict:
    """A latest-trades answer for the whole universe."""
    return {
        "trades": {
            s.symbol: {
                "t": "2024-10-04T19:59:59Z",
                "x": "V",
                "p": s.start_price,
                "s": 100,
                "c": ["@"],
                "i": 1,
                "z": "C",
            }
            for s in UNIVERSE
        }
    }


async def _run(
    gateway: FeedGateway, clock: _Clock, agents: int, symbols: int, cycles: int
) -> list[float]:
    rng = random.Random(7)
    universe = [s.symbol for s in UNIVERSE]
    portfolios = [rng.sample(universe, symbols) for _ in range(agents)]
    latencies: list[float] = []

    async def one(agent: int) -> None:
        for call in (
            gateway.news(f"a{agent}", portfolios[agent], SINCE),
            gateway.quotes(f"a{agent}", portfolios[agent]),
        ):
            start = time.perf_counter()
            await call
            latencies.append(time.perf_counter() - start)

    for _ in range(cycles):
        await asyncio.gather(*(one(a) for a in range(agents)))
        clock.t += CYCLE_SECONDS
    return latencies


def gateway(agents: int = 200, symbols: int = 20, cycles: int = 50) -> list[Figure]:
    """Upstream calls against one-call-per-agent-per-cycle, hit ratio and latency."""
    upstream = ScriptedApp()
    upstream.on("/v2/everything", (200, payload("newsapi_everything.json"), {}))
    upstream.on("/v2/stocks/trades/latest", (200, _trades(), {}))
    with tempfile.TemporaryDirectory() as tmp, serve(upstream) as url:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        clock = _Clock()
        gw = FeedGateway(
            NewsApiSource("k", base_url=url),
            AlpacaSource("id", "s", base_url=url),
            UsageLedger(store),
            MarketClock(),
            news_ttl=60,
            quote_ttl=10,
            monotonic=clock,
        )
        latencies = asyncio.run(_run(gw, clock, agents, symbols, cycles))
        store.engine.dispose()
    calls = len(upstream.seen)
    naive = agents * cycles * 2  # news + quotes, one call per agent per cycle each
    report = gw.report()
    ms = sorted(1000 * x for x in latencies)
    scale = f"{agents} agents × {symbols} symbols × {cycles} cycles"
    return [
        Figure(
            "upstream calls / one-per-agent-per-cycle",
            calls / naive,
            "",
            "≤ 0.02",
            calls / naive <= 0.02,
            f"{calls} of {naive}; {scale}",
        ),
        Figure("gateway cache hit ratio", report["cache_hit_ratio"], "", "", None, scale),
        Figure("gateway latency p50", statistics.median(ms), "ms", "", None, "in-process"),
        Figure(
            "gateway latency p99",
            ms[int(len(ms) * 0.99) - 1],
            "ms",
            "",
            None,
            "in-process; includes the upstream call on a miss",
        ),
    ]
