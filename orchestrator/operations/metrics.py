"""`GET /metrics`: the fleet in Prometheus' text format.

A collector reads the store and the gateways at scrape time, so the numbers are those
`fleet ls` and the dashboards show; only the reconcile loop's duration is recorded as it
happens. Each daemon has its own registry (no process-global state).
"""

from __future__ import annotations

from collections.abc import Iterator

import prometheus_client
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.gateway.feeds import FeedGateway
from orchestrator.gateway.rates import AgentRates
from orchestrator.lifecycle import UNFINISHED, Phase
from orchestrator.operations.views import FleetSummary, open_positions, pnl
from orchestrator.state.store import Store
from orchestrator.state.tables import utc
from orchestrator.state.usage import UsageLedger

_AGENT_LABELS = ["agent_id", "name", "strategy"]


class FleetCollector(Collector):
    """Agents by phase, per-agent health and equity, orders, data and LLM usage."""

    def __init__(
        self,
        store: Store,
        summary: FleetSummary,
        feeds: FeedGateway,
        usage: UsageLedger,
        rates: AgentRates,
    ) -> None:
        self.store = store
        self.summary = summary
        self.feeds = feeds
        self.usage = usage
        self.rates = rates

    def collect(self) -> Iterator[Metric]:
        """Everything, read now."""
        now = self.summary.now()
        phases = self.store.phase_counts()
        by_phase = GaugeMetricFamily("fleet_agents", "Agents by phase.", labels=["phase"])
        for phase in Phase:
            by_phase.add_metric([phase.value], phases.get(phase.value, 0))
        yield by_phase
        yield GaugeMetricFamily(
            "fleet_paused", "1 while the kill switch holds.", value=int(self.store.paused())
        )
        yield GaugeMetricFamily(
            "fleet_market_open",
            "1 while agents may trade (in session, or an always-open market).",
            value=int(self.summary.market()["open"]),
        )
        if (reach := self.summary.reach()) is not None:
            yield GaugeMetricFamily(
                "fleet_platform_reachable",
                "1 while the platform answers the gateway's relay (absent with no platform).",
                value=int(reach["reachable"]),
            )

        live = self.store.agents(UNFINISHED)
        restarts = CounterMetricFamily(
            "fleet_agent_restarts", "Restarts of the agent's workload.", labels=_AGENT_LABELS
        )
        age = GaugeMetricFamily(
            "fleet_agent_heartbeat_age_seconds",
            "Seconds since the agent's last heartbeat.",
            labels=_AGENT_LABELS,
        )
        equity = GaugeMetricFamily(
            "fleet_agent_equity_dollars", "The agent's account equity.", labels=_AGENT_LABELS
        )
        gained = GaugeMetricFamily(
            "fleet_agent_pnl_dollars",
            "The agent's equity gained since its first report.",
            labels=_AGENT_LABELS,
        )
        held = GaugeMetricFamily(
            "fleet_agent_open_positions",
            "Positions the agent holds, as the platform last listed them.",
            labels=_AGENT_LABELS,
        )
        orders = CounterMetricFamily(
            "fleet_orders",
            "Statuses orders reached since the daemon started, by strategy (an order counts "
            "once for each status the platform answered it with).",
            labels=["strategy", "status"],
        )
        for (strategy, status), count in sorted(self.summary.book.outcomes().items()):
            orders.add_metric([strategy, status], count)
        day, placed = self.summary.orders_today()
        today = GaugeMetricFamily(
            "fleet_orders_today",
            "Orders placed on the market's current trading day.",
            labels=["market_day"],
        )
        today.add_metric([day], sum(placed.values()))
        refused = CounterMetricFamily(
            "fleet_gateway_rate_limited",
            "Gateway requests refused with 429 because the agent went over its rate.",
            labels=_AGENT_LABELS,
        )
        for agent in live:
            labels = [agent.id, agent.name, agent.strategy]
            restarts.add_metric(labels, agent.restarts)
            refused.add_metric(labels, self.rates.refused[agent.id])
            beat = utc(agent.last_heartbeat_at)
            if beat is not None:
                age.add_metric(labels, (now - beat).total_seconds())
            if agent.equity is not None:
                equity.add_metric(labels, agent.equity)
            if (made := pnl(agent)) is not None:
                gained.add_metric(labels, round(made, 2))
            if (count := open_positions(agent)) is not None:
                held.add_metric(labels, count)
        yield from (restarts, age, equity, gained, held, orders, today, refused)
        yield from self._feeds()
        yield from self._llm(now.strftime("%Y-%m-%d"))

    def _feeds(self) -> Iterator[Metric]:
        report = self.feeds.report()["providers"]
        upstream = CounterMetricFamily(
            "fleet_gateway_upstream_calls", "Calls made to a data provider.", labels=["provider"]
        )
        hits = CounterMetricFamily(
            "fleet_gateway_cache_hits", "Requests answered from the cache.", labels=["provider"]
        )
        quota = GaugeMetricFamily(
            "fleet_gateway_quota_remaining",
            "Upstream calls left today under the provider's daily quota.",
            labels=["provider"],
        )
        for provider, row in report.items():
            upstream.add_metric([provider], row["upstream_calls"])
            hits.add_metric([provider], row["cache_hits"])
            if row["quota_left_today"] is not None:
                quota.add_metric([provider], row["quota_left_today"])
        yield from (upstream, hits, quota)

    def _llm(self, day: str) -> Iterator[Metric]:
        tokens_in, tokens_out, cost = self.usage.llm_day(day)
        tokens = GaugeMetricFamily(
            "fleet_llm_tokens_today", "LLM tokens used today (UTC).", labels=["direction"]
        )
        tokens.add_metric(["input"], tokens_in)
        tokens.add_metric(["output"], tokens_out)
        yield tokens
        yield GaugeMetricFamily(
            "fleet_llm_cost_today_dollars", "LLM spend today (UTC).", value=cost
        )


class TickMetrics:
    """What the reconciler tells after every tick, by scope: `full`, a tick that planned
    for every agent (a resync of the runtime's list, a new image, a rollout), or
    `partial`, one that planned for the agents events and writes named."""

    def __init__(self) -> None:
        self.duration = Histogram(
            "fleet_reconcile_duration_seconds",
            "Duration of one observe-plan-launch round of the reconciler, by scope (full or"
            " partial).",
            labelnames=["scope"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=None,
        )
        self.planned = prometheus_client.Counter(
            "fleet_reconcile_planned_agents",
            "Agents the reconciler planned for, by the scope of the tick.",
            labelnames=["scope"],
            registry=None,
        )

    def observe(self, seconds: float, planned_all: bool, planned: int) -> None:
        """One tick: how long it took, whether it was full, how many agents it planned."""
        scope = "full" if planned_all else "partial"
        self.duration.labels(scope).observe(seconds)
        self.planned.labels(scope).inc(planned)


def fleet_registry(collector: FleetCollector, ticks: TickMetrics) -> CollectorRegistry:
    """This daemon's registry: the fleet collector and the reconciler's ticks."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    registry.register(ticks.duration)
    registry.register(ticks.planned)
    return registry
