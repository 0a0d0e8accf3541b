"""`fleet up`: wires settings, store, runtime, reconciler and HTTP app into one daemon.

The daemon serves the operator API and the agents' gateway on one port and runs the
reconciler loop beside it. Start-up applies migrations and must not touch any workload
before the reconciler's first successful list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from feeds.clock import MarketClock
from feeds.market import SimulatedMarket
from feeds.simulated import SimulatedProvider
from feeds.sources import NewsSource, QuoteSource
from orchestrator import keys
from orchestrator.accounts import Accounts
from orchestrator.alerts import AlertSender
from orchestrator.api import create_app
from orchestrator.executor import Reconciler, utc_now
from orchestrator.feed_gateway import FeedGateway, ProviderLimit
from orchestrator.llm import LlmGateway
from orchestrator.metrics import fleet_registry
from orchestrator.runtime import Runtime, open_runtime
from orchestrator.scheduler import FleetScheduler
from orchestrator.settings import Settings
from orchestrator.store import Store, open_store
from orchestrator.usage import UsageLedger
from platform_client import PlatformClient

log = logging.getLogger("fleet.daemon")


@dataclass
class Fleet:
    """Everything a running daemon holds; the HTTP handlers reach it via `app.state.fleet`."""

    settings: Settings
    store: Store
    runtime: Runtime
    reconciler: Reconciler
    feeds: FeedGateway
    llm: LlmGateway
    key: bytes = field(repr=False)
    operator_token: str = field(repr=False)
    accounts: Accounts | None = None
    now: Callable[[], datetime] = utc_now
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    scheduler: FleetScheduler | None = None  # set once the event loop runs

    def first_token_hash(self, agent_id: str) -> str:
        """Hash of a new agent's generation-0 gateway token."""
        return keys.token_hash(keys.agent_token(self.key, agent_id, 0))


def build_fleet(settings: Settings) -> Fleet:
    """Open the store and runtime and assemble a fleet (the reconciler is not started)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    key = keys.instance_key(settings.state_dir)
    token = (
        settings.operator_token.get_secret_value()
        if settings.operator_token
        else keys.operator_token(settings.state_dir)
    )
    store = open_store(settings.database_url)
    runtime = open_runtime(settings)
    accounts = open_accounts(settings, key)
    reconciler = Reconciler(store, runtime, settings, key, accounts)
    usage = UsageLedger(store)
    feeds = open_feed_gateway(settings, usage)
    llm = LlmGateway(
        usage,
        api_key=_secret(settings.anthropic_api_key),
        model=settings.llm_model,
        prices=settings.llm_prices,
        daily_budget_usd=settings.llm_daily_budget_usd,
        base_url=settings.anthropic_base_url,
        timeout=settings.llm_timeout_seconds,
    )
    fleet = Fleet(settings, store, runtime, reconciler, feeds, llm, key, token, accounts)
    fleet.metrics, tick_duration = fleet_registry(fleet)
    reconciler.on_tick = tick_duration.observe
    return fleet


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def _sources(settings: Settings, clock: MarketClock) -> tuple[NewsSource, QuoteSource]:
    """The configured news and quote sources; vendor SDKs are imported only when chosen."""
    market = SimulatedMarket(settings.market_seed, settings.market_event_rate)
    simulated = SimulatedProvider(market, clock)
    made: dict[str, object] = {"simulated": simulated}
    for name in {settings.news_provider, settings.quote_provider} - {"simulated"}:
        if name == "newsapi":
            from feeds.providers.newsapi import NewsApiSource

            made[name] = NewsApiSource(_secret(settings.newsapi_key), settings.newsapi_url)
        elif name == "alphavantage":
            from feeds.providers.alphavantage import AlphaVantageSource

            made[name] = AlphaVantageSource(
                _secret(settings.alphavantage_key), settings.alphavantage_url
            )
        else:
            from feeds.providers.alpaca import AlpacaSource

            made[name] = AlpacaSource(
                _secret(settings.alpaca_key_id),
                _secret(settings.alpaca_secret_key),
                settings.alpaca_data_url,
            )
    return made[settings.news_provider], made[settings.quote_provider]  # type: ignore[return-value]


def open_feed_gateway(settings: Settings, usage: UsageLedger) -> FeedGateway:
    """The data plane over the configured providers."""
    clock = MarketClock(settings.market_time_scale, settings.market_anchor)
    news, quotes = _sources(settings, clock)
    limits = {
        "newsapi": ProviderLimit(per_day=settings.newsapi_per_day),
        "alphavantage": ProviderLimit(
            settings.alphavantage_per_minute, settings.alphavantage_per_day
        ),
        "alpaca": ProviderLimit(per_minute=settings.alpaca_per_minute),
    }
    return FeedGateway(
        news,
        quotes,
        usage,
        clock,
        news_ttl=settings.news_ttl_seconds,
        quote_ttl=settings.quote_ttl_seconds,
        limits=limits,
    )


def open_accounts(settings: Settings, key: bytes) -> Accounts | None:
    """Account provisioning on the configured platform, or None when there is none."""
    if not settings.platform_url or settings.controller_api_key is None:
        return None
    configured = _secret(settings.credentials_key)
    client = PlatformClient(
        settings.platform_url,
        controller_key=settings.controller_api_key.get_secret_value(),
        deadline=settings.provision_deadline_seconds,
    )
    return Accounts(client, keys.credentials_cipher(key, configured))


def create_daemon_app(settings: Settings) -> FastAPI:
    """The app with a lifespan that builds the fleet and runs its reconciler."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fleet = await asyncio.to_thread(build_fleet, settings)
        app.state.fleet = fleet
        stop_watching = threading.Event()
        fleet.reconciler.watch(stop_watching)
        alerts = AlertSender(
            fleet.store, _secret(settings.alert_webhook_url), settings.instance, fleet.now
        )
        tasks = [
            asyncio.create_task(fleet.reconciler.run(), name="reconciler"),
            asyncio.create_task(alerts.run(), name="alerts"),
        ]
        fleet.scheduler = FleetScheduler(fleet)
        await fleet.scheduler.start()
        log.info(
            "fleet %s up on %s runtime, operator API at %s",
            settings.instance,
            fleet.runtime.name,
            settings.operator_url,
        )
        try:
            yield
        finally:
            stop_watching.set()
            fleet.scheduler.shutdown()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await fleet.reconciler.drain()
            await asyncio.to_thread(fleet.runtime.close)
            if fleet.accounts is not None:
                fleet.accounts.close()
            fleet.store.engine.dispose()

    return create_app(lifespan)


def serve(settings: Settings) -> None:
    """Run the daemon in the foreground until SIGINT or SIGTERM."""
    uvicorn.run(
        create_daemon_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
    )
