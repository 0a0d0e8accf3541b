"""The agents' side of the gateway: who is calling, what it needs to run, what it reports.

A token names exactly one agent (the store keeps only its hash); a revoked or unknown
token names none. Bootstrap hands an agent its own identity, personality, platform login,
when it last followed someone, what its last process remembered (its catalysts, and the
event that opened each position it holds), and the fleet's schedule, risk rails and clock,
typed by `agent_runtime.contract`, and nothing of any other agent or of the orchestrator's
keys.
What a heartbeat reports is untrusted: it is bounded here before the store sees it.

A thousand agents call several times per cycle each, so the answers come from memory
where they safely can (DESIGN §6):
- a token's agent is remembered for TOKEN_MEMORY_SECONDS, and `refresh` looks every
  remembered agent up again in one query twice in that time, so a running agent's token
  is looked up on its own only once (a lookup per heartbeat was a quarter of the
  daemon's busy time at 300 agents; one per agent a minute, an eighth at 1,000). A change
  of an agent's phase or token in the store (`AgentChanges`) makes the gateway forget
  that agent, so a retirement is told and a revoked token refused at once; the rest of
  the fleet stays remembered (forgetting every agent at each change sent most calls to
  the store while a fleet grew or shrank). The time limit bounds what a change made
  outside this daemon's store leaves stale;
- a heartbeat is checked (its cycle never goes back) and answered at once, and written to
  the store with every other beat of the last FLEET_STORE_BATCH_SECONDS in one transaction
  (`flush`), in the order they came. A store that cannot take a batch keeps it for the next
  try (the last MAX_WAITING_BEATS of each agent).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent_runtime.contract import MAX_ERROR, Bootstrap, ClockSpec, PlatformAccess, Schedule
from feeds.calendar import trading_day
from feeds.clock import MarketClock
from orchestrator import keys
from orchestrator.control.accounts import Accounts
from orchestrator.control.alarms import EQUITY_ALARMS, Thresholds, equity_alarms
from orchestrator.lifecycle import Phase
from orchestrator.settings import Settings
from orchestrator.state.beats import Beat, behind_message
from orchestrator.state.errors import Conflict, DatabaseError
from orchestrator.state.follows import FollowBook
from orchestrator.state.health import StoreHealth
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent
from orchestrator.untrusted import Body

# Bounds on what an agent may claim: far beyond any real account, small enough that a
# fleet's sums stay finite and every count fits the store's 64-bit integers.
MAX_DOLLARS = 1e15
MAX_COUNT = 2**53
TOKEN_MEMORY_SECONDS = 60.0
MAX_WAITING_BEATS = 10


class Learned(Body):
    """What an agent has learned of one kind of news event (`agent_runtime.catalysts`)."""

    model_config = ConfigDict(extra="ignore")

    score: float = Field(ge=-1, le=1, allow_inf_nan=False)
    trades: int = Field(ge=0, le=MAX_COUNT)
    weight: float = Field(ge=0.5, le=1.5, allow_inf_nan=False)


EventType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9&_.-]{1,32}$")]
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]{1,16}$")]


class OpenTrade(Body):
    """The event that opened one position an agent holds, and its entry price."""

    model_config = ConfigDict(extra="ignore")

    catalyst: EventType
    entry: float = Field(gt=0, le=MAX_DOLLARS, allow_inf_nan=False)


class Heartbeat(Body):
    """What an agent reports every cycle (untrusted: every field is bounded and of its
    own type). A field it does not know is ignored, not refused: during a rollout, agents
    of a newer image report to this daemon."""

    model_config = ConfigDict(extra="ignore")

    cycle: int = Field(ge=0, le=MAX_COUNT)
    phase: str = Field(default="running", max_length=32)
    equity: float | None = Field(default=None, ge=-MAX_DOLLARS, le=MAX_DOLLARS, allow_inf_nan=False)
    cash: float | None = Field(default=None, ge=-MAX_DOLLARS, le=MAX_DOLLARS, allow_inf_nan=False)
    positions: list[dict] = Field(default_factory=list, max_length=200)
    orders_submitted: int = Field(default=0, ge=0, le=MAX_COUNT)
    orders_filled: int = Field(default=0, ge=0, le=MAX_COUNT)
    orders_today: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    last_error: str | None = Field(default=None, max_length=MAX_ERROR)
    catalysts: dict[EventType, Learned] | None = Field(default=None, max_length=16)
    open_trades: dict[Symbol, OpenTrade] | None = Field(default=None, max_length=200)


class HeartbeatReply(BaseModel):
    """What the orchestrator tells the agent back."""

    paused: bool
    retire: bool


# What an agent's process remembers and hands to the next one, through its heartbeats
_REMEMBERED = ("catalysts", "open_trades")


def _text(memory: Mapping[str, BaseModel]) -> str:
    """A reported memory as the store keeps it: compact JSON, keys in order."""
    dumped = {key: memory[key].model_dump() for key in sorted(memory)}
    return json.dumps(dumped, separators=(",", ":"))


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
        self.follows = FollowBook(store)
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
        self._market = MarketClock(settings.market_time_scale, settings.market_anchor)
        self._sample_every = timedelta(seconds=settings.equity_sample_seconds)
        self.thresholds = alarm_thresholds(settings)
        self._lock = threading.Lock()
        # token hash → the agent, when it was looked up, and its `agent_epoch` then
        self._callers: dict[str, tuple[Agent, float, int]] = {}
        # agent → the last cycle taken since its bootstrap (None: none yet)
        self._cycles: dict[str, int | None] = {}
        self._pending: dict[str, list[Beat]] = {}  # agent → its beats not yet in the store

    def remembered(self, token: str) -> Agent | None:
        """The agent holding this token if the gateway remembers it (no store call: the
        `Gatekeeper` asks on the event loop first)."""
        if not token:
            return None
        with self._lock:
            known = self._callers.get(keys.token_hash(token))
        if known is None:
            return None
        agent, at, epoch = known
        if (
            time.monotonic() - at < TOKEN_MEMORY_SECONDS
            and self.store.changes.agent_epoch(agent.id) == epoch
        ):
            return agent
        return None

    def authenticate(self, token: str) -> Agent | None:
        """The agent holding this gateway token, or None for an unknown or revoked one.
        A store that cannot be asked is reported to `health` (and the error raised on)."""
        if not token:
            return None
        if (agent := self.remembered(token)) is not None:
            return agent
        now, epoch, digest = time.monotonic(), self.store.changes.epoch, keys.token_hash(token)
        try:
            agent = self.store.by_token_hashes([digest]).get(digest)
        except DatabaseError as exc:
            self.health.failed("heartbeats", exc)
            raise
        with self._lock:
            if len(self._callers) > 4 * max(64, len(self._cycles)):  # forget the stale
                self._callers = {
                    d: k for d, k in self._callers.items() if now - k[1] < TOKEN_MEMORY_SECONDS
                }
            if agent is not None:
                mark = self.store.changes.agent_epoch(agent.id)  # then: nothing changed meanwhile
                if self.store.changes.epoch == epoch:
                    self._callers[digest] = (agent, now, mark)
        return agent

    def refresh(self) -> None:
        """Look every remembered agent up again, in one query: those whose token still
        names them are remembered afresh. Nothing is refreshed when a phase or token
        changed meanwhile, and an agent whose token is gone is left to be forgotten."""
        with self._lock:
            digests = list(self._callers)
        if not digests:
            return
        now, epoch = time.monotonic(), self.store.changes.epoch
        try:
            found = self.store.by_token_hashes(digests)
        except DatabaseError as exc:
            self.health.failed("heartbeats", exc)
            return
        with self._lock:
            if self.store.changes.epoch == epoch:
                for digest, agent in found.items():
                    self._callers[digest] = (agent, now, self.store.changes.agent_epoch(agent.id))

    def bootstrap(self, agent: Agent) -> Bootstrap:
        """Everything `agent` needs beyond its three environment variables; a new process
        starts its count of cycles afresh."""
        with self._lock:  # a new process counts its cycles afresh
            self._cycles[agent.id] = None
            waiting = self._pending.pop(agent.id, None) or []
        # what the last process remembered: the store's, or its beats' not yet written
        kept = self.store.bootstrapped(agent.id)
        for waited in waiting:
            kept |= {name: waited.state[name] for name in _REMEMBERED if name in waited.state}
        catalysts, open_trades = (kept.get(name) for name in _REMEMBERED)
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
            followed_at=self.follows.last_followed(agent.id),
            catalysts=json.loads(catalysts) if catalysts else None,
            open_trades=json.loads(open_trades) if open_trades else None,
        )

    def paused_known(self) -> bool | None:
        """The kill switch if it is in memory (read in the last second), else None."""
        return self.store.paused_known()

    def heartbeat(
        self, agent: Agent, beat: Heartbeat, paused: bool | None = None
    ) -> HeartbeatReply:
        """Take a heartbeat for the next batch; answer with the kill switch (`paused`, else
        read from the store) and whether to retire. A cycle behind the last one taken since
        the agent's bootstrap is refused (Conflict); the same cycle again is a retry."""
        state = {
            "equity": beat.equity,
            "cash": beat.cash,
            "open_positions": len(beat.positions),
            "orders_submitted": beat.orders_submitted,
            "orders_filled": beat.orders_filled,
            "orders_today": beat.orders_today,
        }
        # one text for the same memory, so an unchanged one is not written again
        if beat.catalysts:
            state["catalysts"] = _text(beat.catalysts)
        if beat.open_trades is not None:  # none left is news too
            state["open_trades"] = _text(beat.open_trades)
        with self._lock:
            last = self._cycles.get(agent.id, agent.last_cycle)
            if last is not None and beat.cycle < last:
                raise Conflict(behind_message(beat.cycle, last))
            self._cycles[agent.id] = beat.cycle
            waiting = self._pending.setdefault(agent.id, [])
            now = self.now()
            day = trading_day(self._market.at(now))  # the day its orders are counted on too
            waiting.append(Beat(agent.id, beat.cycle, beat.last_error, now, day, state))
            del waiting[:-MAX_WAITING_BEATS]
        if paused is None:
            try:
                paused = self.store.paused()
            except DatabaseError as exc:
                self.health.failed("heartbeats", exc)
                raise
        return HeartbeatReply(paused=paused, retire=agent.phase == Phase.RETIRING)

    def flush(self) -> int:
        """Write the waiting heartbeats in one transaction, then sound the equity alarms
        each of them raises or ends; returns how many were written. A store that cannot
        take them is reported to `health`, and the beats wait for the next flush."""
        with self._lock:
            batch, self._pending = self._pending, {}
        beats = [beat for waiting in batch.values() for beat in waiting]
        if not beats:
            return 0
        try:
            recorded = self.store.heartbeats(beats, self._sample_every)
        except DatabaseError as exc:
            with self._lock:
                for agent_id, waiting in batch.items():
                    kept = waiting + self._pending.get(agent_id, [])
                    self._pending[agent_id] = kept[-MAX_WAITING_BEATS:]
            self.health.failed("heartbeats", exc)
            return 0
        self.health.worked("heartbeats")
        standing: dict[str, bool] = {}
        try:
            for seen in recorded:
                holding = equity_alarms(seen.name, seen.equity, seen.peak_equity, self.thresholds)
                if holding or seen.alarms or standing.get(seen.agent_id):
                    self.store.sound_alarms(seen.agent_id, EQUITY_ALARMS, holding, self.now())
                standing[seen.agent_id] = bool(holding)
        except DatabaseError as exc:  # the next beat's alarms are sounded again
            self.health.failed("heartbeats", exc)
        return len(beats)
