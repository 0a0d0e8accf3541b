"""The agents' side of the gateway: who is calling, what it needs to run, what it reports.

A token names exactly one agent (the store keeps only its hash); a revoked or unknown
token names none. Bootstrap hands an agent its own identity, personality, platform login
and the fleet's schedule, risk rails and clock, typed by `agent_runtime.contract`, and
nothing of any other agent or of the orchestrator's keys. What a heartbeat reports is
untrusted: it is bounded here before the store sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from agent_runtime.contract import Bootstrap, ClockSpec, PlatformAccess, Schedule
from orchestrator import keys
from orchestrator.control.accounts import Accounts
from orchestrator.control.alarms import EQUITY_ALARMS, Thresholds, equity_alarms
from orchestrator.lifecycle import Phase
from orchestrator.settings import Settings
from orchestrator.state.errors import DatabaseError
from orchestrator.state.health import StoreHealth
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent

# Bounds on what an agent may claim: far beyond any real account, small enough that a
# fleet's sums stay finite and every count fits the store's 64-bit integers.
MAX_DOLLARS = 1e15
MAX_COUNT = 2**53


class Heartbeat(BaseModel):
    """What an agent reports every cycle (untrusted: every field is bounded)."""

    cycle: int = Field(ge=0, le=MAX_COUNT)
    phase: str = Field(default="running", max_length=32)
    equity: float | None = Field(default=None, ge=-MAX_DOLLARS, le=MAX_DOLLARS, allow_inf_nan=False)
    cash: float | None = Field(default=None, ge=-MAX_DOLLARS, le=MAX_DOLLARS, allow_inf_nan=False)
    positions: list[dict] = Field(default_factory=list, max_length=200)
    orders_submitted: int = Field(default=0, ge=0, le=MAX_COUNT)
    orders_filled: int = Field(default=0, ge=0, le=MAX_COUNT)
    orders_today: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    last_error: str | None = Field(default=None, max_length=2000)


class HeartbeatReply(BaseModel):
    """What the orchestrator tells the agent back."""

    paused: bool
    retire: bool


def alarm_thresholds(settings: Settings) -> Thresholds:
    """Where the trading alarms begin: the risk rail's equity floor, and the alert
    settings."""
    return Thresholds(settings.risk_min_equity, settings.alert_drawdown, settings.alert_rejections)


class AgentGateway:
    """Authentication, bootstrap and heartbeats of the agents."""

    def __init__(
        self,
        store: Store,
        accounts: Accounts | None,
        health: StoreHealth,
        settings: Settings,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.health = health
        self.now = now
        cycle = settings.agent_cycle_seconds
        self._schedule = Schedule(cycle_seconds=cycle, jitter_seconds=round(cycle * 0.1, 3))
        self._risk_limits = settings.risk_limits()
        self._clock = ClockSpec(
            time_scale=settings.market_time_scale,
            anchor=settings.market_anchor,
            hours=settings.market_hours,
        )
        self._sample_every = timedelta(seconds=settings.equity_sample_seconds)
        self.thresholds = alarm_thresholds(settings)

    def authenticate(self, token: str) -> Agent | None:
        """The agent holding this gateway token, or None for an unknown or revoked one.
        A store that cannot be asked is reported to `health` (and the error raised on)."""
        if not token:
            return None
        try:
            return self.store.by_token_hash(keys.token_hash(token))
        except DatabaseError as exc:
            self.health.failed("heartbeats", exc)
            raise

    def bootstrap(self, agent: Agent) -> Bootstrap:
        """Everything `agent` needs beyond its three environment variables; a new process
        starts its count of cycles afresh."""
        self.store.bootstrapped(agent.id)
        platform = None
        if self.accounts is not None and agent.credentials:
            login = self.accounts.open(agent.credentials)
            platform = PlatformAccess(login["username"], login["password"])
        return Bootstrap(
            agent_id=agent.id,
            name=agent.name,
            strategy=agent.strategy,
            personality=json.loads(agent.personality) if agent.personality else None,
            platform=platform,
            schedule=self._schedule,
            risk_limits=self._risk_limits,
            clock=self._clock,
            paused=self.store.paused(),
        )

    def heartbeat(self, agent: Agent, beat: Heartbeat) -> HeartbeatReply:
        """Record a heartbeat; answer with the kill switch and whether to retire. A store
        that cannot take it is reported to `health` (and the error raised on)."""
        try:
            updated = self._record(agent, beat)
        except DatabaseError as exc:
            self.health.failed("heartbeats", exc)
            raise
        self.health.worked("heartbeats")
        holding = equity_alarms(updated.name, updated.equity, updated.peak_equity, self.thresholds)
        if holding or updated.alarms:
            self.store.sound_alarms(updated.id, EQUITY_ALARMS, holding, self.now())
        return HeartbeatReply(paused=self.store.paused(), retire=updated.phase == Phase.RETIRING)

    def _record(self, agent: Agent, beat: Heartbeat) -> Agent:
        return self.store.heartbeat(
            agent.id,
            beat.cycle,
            beat.last_error,
            self.now(),
            self._sample_every,
            equity=beat.equity,
            cash=beat.cash,
            open_positions=len(beat.positions),
            orders_submitted=beat.orders_submitted,
            orders_filled=beat.orders_filled,
            orders_today=beat.orders_today,
        )
