"""`fleet up`: the composition root. Builds every service from the settings, once, in
dependency order, hands each the narrow services it uses, and runs the loops beside the
HTTP app.

The daemon serves the operator API and the agents' gateway on its port, the gateway
alone on the gateway socket (all that a confined agent can reach), and runs the
reconciler, the heartbeats' batches, the alert sender and the scheduler beside them.
Start-up applies migrations and touches no workload before the reconciler's first
successful list. Nothing is wired after construction: each object gets what it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from feeds.clock import MarketClock
from feeds.market import SimulatedMarket
from feeds.simulated import SimulatedProvider
from feeds.sources import NewsSource, QuoteSource
from orchestrator import keys
from orchestrator.api import create_app, listen
from orchestrator.api.gateway import gateway_router
from orchestrator.api.operator import health_router, operator_router
from orchestrator.api.rollouts import rollouts_router
from orchestrator.api.schedules import schedules_router
from orchestrator.api.web import Sessions, web_router
from orchestrator.control.accounts import Accounts
from orchestrator.control.alerts import AlertSender
from orchestrator.control.executor import Executor, Launching
from orchestrator.control.plan import Policy
from orchestrator.control.reconciler import Reconciler
from orchestrator.control.rollout import RolloutPolicy
from orchestrator.gateway.agents import TOKEN_MEMORY_SECONDS, AgentGateway
from orchestrator.gateway.decisions import DecisionIntake
from orchestrator.gateway.feeds import FeedGateway, ProviderLimit
from orchestrator.gateway.llm import LlmGateway
from orchestrator.gateway.rates import AgentRates
from orchestrator.gateway.relay import PlatformRelay
from orchestrator.operations.background import keep, repeat, retain
from orchestrator.operations.commands import Commands
from orchestrator.operations.metrics import FleetCollector, TickMetrics, fleet_registry
from orchestrator.operations.reports import build_report
from orchestrator.operations.scheduler import FleetScheduler
from orchestrator.operations.views import FleetSummary, health_problems
from orchestrator.runtime import Runtime, RuntimeUnavailable
from orchestrator.settings import Settings
from orchestrator.state.db import connect, migrate
from orchestrator.state.health import StoreHealth
from orchestrator.state.lease import FleetLease
from orchestrator.state.orders import OrderBook
from orchestrator.state.rollouts import RolloutBook
from orchestrator.state.schedules import ScheduleBook
from orchestrator.state.store import Store
from orchestrator.state.usage import UsageLedger
from platform_client import PlatformClient

log = logging.getLogger("fleet.daemon")
MIN_FREE_BYTES = 50 * 2**20  # below it under the state dir, /healthz says degraded
# On SIGTERM: how long in-flight actions may finish, and the whole stop may take.
DRAIN_SECONDS = 10
STOP_SECONDS = 20


def utc_now() -> datetime:
    """The wall clock, in UTC: the one `now` every service of a daemon is given."""
    return datetime.now(UTC)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def open_runtime(settings: Settings) -> Runtime:
    """The backend named by `FLEET_RUNTIME`; `auto` picks Docker when its engine answers."""
    from orchestrator.runtime.docker import DockerRuntime
    from orchestrator.runtime.process import ProcessRuntime

    if settings.runtime == "process":
        return ProcessRuntime(settings)
    if settings.runtime == "docker":
        return DockerRuntime(settings)
    if settings.runtime == "swarm":
        from orchestrator.runtime.swarm import SwarmRuntime

        return SwarmRuntime(settings)
    try:
        return DockerRuntime(settings)
    except RuntimeUnavailable:
        return ProcessRuntime(settings)


def _sources(settings: Settings, clock: MarketClock) -> tuple[NewsSource, QuoteSource]:
    """The configured news and quote sources; vendor SDKs are imported only when chosen."""
    market = SimulatedMarket(settings.market_seed, settings.market_event_rate)
    made: dict[str, object] = {"simulated": SimulatedProvider(market, clock)}
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
    client = PlatformClient(
        settings.platform_url,
        controller_key=settings.controller_api_key.get_secret_value(),
        deadline=settings.provision_deadline_seconds,
    )
    return Accounts(client, keys.credentials_cipher(key, _secret(settings.credentials_key)))


App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def create_daemon_app(settings: Settings) -> App:
    """Build every service and the app that serves them; its lifespan runs the loops."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    now = utc_now
    engine = connect(settings.database_url)
    lease = FleetLease(settings.state_dir, engine)
    lease.acquire()  # before anything is migrated, started or touched
    migrate(engine)
    store, health = Store(engine), StoreHealth(now)
    key = keys.instance_key(settings.state_dir)
    operator_token = _secret(settings.operator_token) or keys.operator_token(settings.state_dir)
    runtime = open_runtime(settings)
    accounts = open_accounts(settings, key)
    usage = UsageLedger(store)
    book = OrderBook(store)
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
    ticks = TickMetrics()
    rollouts = RolloutBook(store)
    executor = Executor(
        store,
        book,
        rollouts,
        runtime,
        accounts,
        Launching(
            gateway_url=settings.gateway_url,
            key=key,
            stop_grace_seconds=settings.stop_grace_seconds,
            restart_reset_seconds=settings.restart_reset_seconds,
        ),
        now,
    )
    assert settings.heartbeat_timeout_seconds is not None  # settings derive it
    reconciler = Reconciler(
        store,
        runtime,
        executor,
        Policy(
            heartbeat_timeout=timedelta(seconds=settings.heartbeat_timeout_seconds),
            restart_reset=timedelta(seconds=settings.restart_reset_seconds),
            crashloop_threshold=settings.crashloop_threshold,
        ),
        health,
        rollouts=rollouts,
        rollout_policy=RolloutPolicy(
            batch_fraction=settings.rollout_batch,
            settle=timedelta(seconds=settings.rollout_settle_seconds),
            deadline=timedelta(seconds=settings.rollout_deadline_seconds),
        ),
        may_act=lease.held,
        platform=accounts is not None,
        interval=settings.reconcile_interval_seconds,
        concurrency=settings.max_concurrent_actions,
        now=now,
        on_tick=ticks.observe,
    )
    flatten = timedelta(seconds=settings.flatten_deadline_seconds) if accounts else None
    commands = Commands(store, key, reconciler.wake, now, flatten_deadline=flatten)
    agents = AgentGateway(store, accounts, health, settings, now)
    rates = AgentRates(settings.agent_cycle_seconds)
    relay = (
        PlatformRelay(
            settings.platform_url,
            book,
            store,
            agents.thresholds,
            health,
            now,
            feeds.clock.now,
            settings.risk_max_orders_per_day,
        )
        if accounts
        else None
    )
    summary = FleetSummary(
        store,
        book,
        usage,
        feeds,
        instance=settings.instance,
        runtime=runtime.name,
        market_hours=settings.market_hours,
        listed=lambda: reconciler.listed_once,
        now=now,
        platform=relay.reach if relay else None,
    )
    report = partial(
        build_report, store, usage, feeds.providers, settings.instance, summary.orders_today
    )
    scheduler = FleetScheduler(ScheduleBook(store), commands, report, now, health)
    alerts = AlertSender(store, _secret(settings.alert_webhook_url), settings.instance, now, health)
    decisions = DecisionIntake(store, health, now, feeds.clock.now, settings.decision_budget_bytes)
    gateway = gateway_router(agents, decisions, feeds, llm, relay)
    routers = [
        gateway,
        health_router(
            settings.instance,
            runtime.name,
            lambda: reconciler.listed_once,
            partial(health_problems, health, settings.state_dir, MIN_FREE_BYTES),
            fleet_registry(FleetCollector(store, summary, feeds, usage, rates), ticks),
        ),
        operator_router(commands, summary, store, runtime),
        schedules_router(scheduler, store),
        rollouts_router(rollouts, store, now),
        web_router(
            commands,
            summary,
            store,
            operator_token,
            Sessions(operator_token, settings.dashboard_session_seconds, time.time),
            settings.dashboard_actions,
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop_watching = threading.Event()
        reconciler.watch(stop_watching)
        tasks = [
            asyncio.create_task(reconciler.run(), name="reconciler"),
            asyncio.create_task(alerts.run(), name="alerts"),
            *(
                asyncio.create_task(repeat(flush, settings.store_batch_seconds, last=True))
                for flush in (agents.flush, *([relay.flush] if relay else []))
            ),
            asyncio.create_task(repeat(agents.refresh, TOKEN_MEMORY_SECONDS / 2, last=False)),
            asyncio.create_task(keep(lease, settings.reconcile_interval_seconds), name="lease"),
            asyncio.create_task(retain(store, settings.retention_days, health), name="retention"),
        ]
        await scheduler.start()
        log.info(
            "fleet %s up on %s runtime, operator API at %s",
            settings.instance,
            runtime.name,
            settings.operator_url,
        )
        try:
            yield
        finally:
            stop_watching.set()
            scheduler.shutdown()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:  # an action cut short is idempotent: it is decided again after restart
                await asyncio.wait_for(reconciler.drain(), DRAIN_SECONDS)
            except TimeoutError:
                log.warning("stopping with actions still in flight after %ss", DRAIN_SECONDS)
            await asyncio.to_thread(runtime.close)
            if accounts is not None:
                accounts.close()
            if relay is not None:
                await relay.aclose()
            lease.release()
            store.engine.dispose()

    guard = {
        "authenticate_agent": agents.authenticate,
        "remembered_agent": agents.remembered,
        "rates": rates,
        "operator_token": operator_token,
        "heartbeats": agents,
    }
    return _two_doors(
        create_app(routers, lifespan=lifespan, **guard),
        create_app([gateway], **guard),
        settings.port,
    )


def _two_doors(app: FastAPI, gateway_only: FastAPI, port: int) -> App:
    """One server, two doors: a request that came in on the daemon's TCP port reaches the
    whole app; anything else (the gateway socket) reaches the agents' routes only, never
    the operator API or `/metrics`. Lifespan events go to the whole app."""

    async def door(scope: dict[str, Any], receive: Any, send: Any) -> None:
        server = scope.get("server")
        on_port = isinstance(server, tuple | list) and server[1] == port
        if scope["type"] == "lifespan" or on_port:
            await app(scope, receive, send)
        else:
            await gateway_only(scope, receive, send)

    return door


def serve(settings: Settings) -> None:
    """Run the daemon in the foreground until SIGINT or SIGTERM. The stop takes at most
    `STOP_SECONDS`; then uvicorn re-raises the signal, which ends the process without
    waiting for a worker thread stuck on the engine or the platform (what it was doing is
    idempotent, and is decided again on the next start)."""
    _open_files_limit()
    app = create_daemon_app(settings)
    _collect_for_a_long_life()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=STOP_SECONDS,
        # An agent's connection lasts from one heartbeat to the next: a new one for every
        # beat cost the daemon more than the beat itself
        timeout_keep_alive=max(5, round(3 * settings.agent_cycle_seconds)),
    )
    port = listen.on_port(
        settings.host, settings.port, "set FLEET_PORT (and FLEET_HOST) to a free address"
    )
    uvicorn.Server(config).run(sockets=[port, listen.on_gateway_socket(settings.gateway_socket)])


def _open_files_limit() -> None:
    """Raise the soft limit on open files to the hard one: each agent keeps a connection
    open, and a common soft limit (1,024) is smaller than the fleet."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _collect_for_a_long_life() -> None:
    """Garbage collection for a long-lived server: what starting made (modules, classes,
    the app: about 180,000 objects) is frozen out of full collections, and young objects
    are collected every 7,000 allocations, not Python's 700. At 1,000 idle agents the
    collector took 0.66 s of the daemon's CPU a minute, three full passes of 0.17 s among
    them; after, 0.06 s a minute and no full pass (`gc.callbacks`, by hand)."""
    gc.collect()  # what starting left behind goes first, not into the frozen set
    gc.freeze()
    gc.set_threshold(7000, 10, 10)
