"""The platform relay: an agent's own trading calls, passed through the gateway.

A confined agent has no network (DESIGN §4.1): the gateway is all it can reach, so its
platform calls come here and go on to the platform unchanged, with the agent's own
platform login. Only the agent's routes of the platform are relayed (log in, submit,
orders, portfolio, subscriptions, the leaderboard and the social feed); a controller route,
or anything else, is refused without reaching the platform, and the relay never adds a key
of its own. The agent's platform token travels in `X-Platform-Authorization` (its
`Authorization` is its gateway token, checked by the `Gatekeeper`) and goes upstream as
`Authorization`.

What passes is also written down: each order the platform answers (placed, filled,
rejected or replayed) goes into the fleet's order book at once; each portfolio answer sets
the agent's open positions, and each follow, unfollow and listing of subscriptions the
platform confirms goes into the fleet's follow book. Every agent lists its portfolio every
cycle, and a fleet coming up follows thousands of accounts in a minute, so those wait in
memory and `flush` writes them together, in one transaction each. A store that cannot
take them never fails the agent's call; it is reported to the store's health.

The kill switch holds here as well as in the agents: while the fleet is paused, a submit
is refused (409, `fleet_paused`) without reaching the platform. An agent hears of a pause
on its next heartbeat, and a cycle under way when it is set would otherwise still send
its orders. So does the daily order cap (`FLEET_RISK_MAX_ORDERS_PER_DAY`): an agent's
own rails stop at it, and a submit past it, which only an agent that ignores its rails
sends, is refused (409, `order_cap`) and alarmed, once per episode. A resend of an order
placed today is a replay, not a new order, and passes.

Whether the platform answers is kept too (`reach`), for the operator: the relay hears of
an outage at the first call that finds no platform, before the agents' heartbeats carry
their own errors.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent_runtime.contract import without_nul
from feeds.calendar import trading_day
from orchestrator.control.accounts import placed
from orchestrator.control.alarms import ORDER_ALARMS, Thresholds, order_alarms
from orchestrator.lifecycle import AlertKind
from orchestrator.state.errors import DatabaseError
from orchestrator.state.follows import FollowBook, FollowChange
from orchestrator.state.health import StoreHealth
from orchestrator.state.orders import OrderBook, PlacedOrder
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent
from platform_client import Order
from platform_client._http import Http, HttpError

# (method, path under the platform's root) an agent may send.
RELAYED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile(pattern))
    for method, pattern in (
        ("POST", r"api/auth/login"),
        ("POST", r"api/trading/submit"),
        ("GET", r"api/trading/orders"),
        ("GET", r"api/trading/portfolio"),
        ("GET", r"api/subscriptions"),
        ("POST", r"api/subscriptions"),
        ("DELETE", r"api/subscriptions/[A-Za-z0-9_-]{1,64}"),
        ("GET", r"api/social/leaderboard"),
        ("GET", r"api/social/feed"),
    )
)
_PASSED_BACK = ("content-type", "retry-after")
_UNAVAILABLE = (502, 503, 504)  # what a proxy before a platform that is down answers
FOLLOWS_WAITING = 10_000  # changes kept for a store that cannot take them; the oldest go
# Calls upstream at once; more wait their turn. httpx's pool allowed 100, but a call to a
# local server cost 0.75 ms of CPU with httpx and 0.2 ms with this client (the server's
# included), and at spawn, when every agent logs in, reads its account and looks for whom
# to follow, the relay was a seventh of the daemon's busy time.
UPSTREAM_CALLS = 32


@dataclass(frozen=True)
class Relayed:
    """The platform's answer, as it goes back to the agent."""

    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class _Today:
    """An agent's orders on one trading day, as far as the relay let them through."""

    day: str
    placed: set[str]  # client order ids the platform answered
    sending: int = 0  # new orders on their way upstream


def _client_order_id(request: bytes) -> str | None:
    try:
        sent = json.loads(request or b"{}")
    except ValueError:
        return None
    cid = sent.get("client_order_id") if isinstance(sent, dict) else None
    return cid if isinstance(cid, str) else None


def _standing(agent: Agent, kind: AlertKind) -> bool:
    """Whether the agent's alarm of `kind` stands, as far as `agent` knows (the gateway's
    memory of it may be older than the store)."""
    return kind in (agent.alarms or "").split(",")


def relayed(method: str, path: str) -> bool:
    """Whether an agent may send `method path` to the platform."""
    return any(method == m and pattern.fullmatch(path) for m, pattern in RELAYED)


def _refused(status: int, code: str, message: str) -> Relayed:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Relayed(status, body.encode(), {"content-type": "application/json"})


def placed_order(request: bytes, answer: bytes) -> tuple[PlacedOrder, str | None] | None:
    """The order a submit answer describes, and the rationale the agent sent with it;
    None for an answer that is not an order."""
    try:
        sent, got = json.loads(request or b"{}"), json.loads(answer)
        order = placed(Order.from_json(got))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if order is None:
        return None
    rationale = sent.get("rationale") if isinstance(sent, dict) else None
    if not isinstance(rationale, str):
        return order, None
    return order, without_nul(rationale)  # PostgreSQL cannot keep a NUL


def listed_positions(answer: bytes) -> list[dict] | None:
    """The positions of a portfolio answer, each {symbol, qty, avg_price, price,
    unrealized_pl}; None for an answer that is not a portfolio."""
    try:
        return [
            {
                "symbol": str(p["symbol"])[:16],
                "qty": float(p["qty"]),
                "avg_price": float(p["avg_price"]),
                "price": float(p["price"]),
                "unrealized_pl": float(p["unrealized_pl"]),
            }
            for p in json.loads(answer)["positions"][:100]
        ]
    except (ValueError, KeyError, TypeError):
        return None


class PlatformRelay:
    """Passes an agent's allowed platform calls to `base_url`, brings the answer back, and
    keeps what it says about the agent's orders and positions in `book`."""

    def __init__(
        self,
        base_url: str,
        book: OrderBook,
        store: Store,
        thresholds: Thresholds,
        health: StoreHealth,
        now: Callable[[], datetime],
        market_now: Callable[[], datetime],
        max_orders_per_day: int,
        timeout: float = 10.0,
    ) -> None:
        self.book = book
        self.follows = FollowBook(store)
        self.store = store
        self.thresholds = thresholds
        self.health = health
        self.now = now
        self.market_now = market_now
        self.max_orders_per_day = max_orders_per_day
        self._today: dict[str, _Today] = {}  # agent id → its orders of the trading day
        self._capped: set[str] = set()  # agents whose order-cap alarm this relay sounded
        self._lock = threading.Lock()
        self._positions: dict[str, tuple[list[dict], datetime]] = {}  # waiting for a batch
        self._follows: deque[FollowChange] = deque(maxlen=FOLLOWS_WAITING)  # the same
        self._sounded: set[str] = set()  # agents whose order alarms this relay sounded
        self._down: tuple[datetime, int] | None = None  # since when, and calls failed since
        self._http = Http(base_url.rstrip("/"), timeout=timeout)
        self._calls = ThreadPoolExecutor(UPSTREAM_CALLS, thread_name_prefix="fleet-relay")

    async def forward(
        self,
        agent: Agent,
        method: str,
        path: str,
        query: str,
        body: bytes,
        platform_auth: str | None,
    ) -> Relayed:
        """Send one allowed call of `agent` upstream (check `relayed` first), and note
        what its answer says; an unreachable platform is a 502 the agent's client retries
        like any platform outage; a submit while the fleet is paused, or past the agent's
        orders for the day, is refused here."""
        if path == "api/trading/submit":
            return await self._submit(agent, query, body, platform_auth)
        answer = await self._send(method, path, query, body, platform_auth)
        if answer.status >= 300:
            return answer
        if path == "api/trading/portfolio":  # kept in memory for the next batch
            if (positions := listed_positions(answer.body)) is not None:
                self._note_positions(agent.id, positions)
        elif path.startswith("api/subscriptions"):  # the same
            self._note_follows(agent.id, method, path, body, answer.body)
        return answer

    async def _submit(
        self, agent: Agent, query: str, body: bytes, platform_auth: str | None
    ) -> Relayed:
        if await self._paused():
            return _refused(409, "fleet_paused", "the fleet is paused: no orders until resumed")
        today = await self._orders_today(agent.id)
        new = _client_order_id(body) not in today.placed  # else a replay of today's order
        if new and len(today.placed) + today.sending >= self.max_orders_per_day:
            message = (
                f"agent {agent.name} has placed its {self.max_orders_per_day} orders of "
                f"trading day {today.day} (FLEET_RISK_MAX_ORDERS_PER_DAY): no more until the next"
            )
            await asyncio.to_thread(self._wrote, self._sound_cap, agent, message)
            return _refused(409, "order_cap", message)
        # A new order let through ends an episode of refusals (a replay does not).
        ending = new and (agent.id in self._capped or _standing(agent, AlertKind.ORDER_CAP))
        today.sending += new  # held, so that orders sent together count each other
        try:
            answer = await self._send("POST", "api/trading/submit", query, body, platform_auth)
        finally:
            today.sending -= new
        if answer.status < 300 and (order := placed_order(body, answer.body)):
            today.placed.add(order[0].client_order_id)
            await asyncio.to_thread(self._wrote, self._note_order, agent, order, ending)
        return answer

    async def _orders_today(self, agent_id: str) -> _Today:
        """The agent's orders of the trading day: from memory, or from the order book
        once a day (so a restart forgets none). A store that cannot say fails the
        submit (503), as the kill switch does."""
        day = trading_day(self.market_now())
        if (today := self._today.get(agent_id)) is not None and today.day == day:
            return today
        try:
            placed_today = await asyncio.to_thread(self.book.client_order_ids, agent_id, day)
        except DatabaseError as exc:
            self.health.failed("order cap", exc)
            raise
        if (today := self._today.get(agent_id)) is None or today.day != day:  # not meanwhile
            today = self._today[agent_id] = _Today(day, placed_today)
        return today

    async def _paused(self) -> bool:
        """The kill switch: from memory if read within the last second, else the store. A
        store that cannot say fails the submit (503): no order goes unchecked."""
        if (known := self.store.paused_known()) is not None:
            return known
        try:
            return await asyncio.to_thread(self.store.paused)
        except DatabaseError as exc:
            self.health.failed("kill switch", exc)
            raise

    def _note_order(
        self, agent: Agent, order: tuple[PlacedOrder, str | None], ending_cap: bool
    ) -> None:
        self.book.record(agent.id, *order, now=self.now())
        statuses = self.book.latest_statuses(agent.id, self.thresholds.rejections)
        holding = order_alarms(agent.name, statuses, self.thresholds)
        # `agent` may be the gateway's memory of it, older than the alarms sounded here
        if holding or agent.alarms or agent.id in self._sounded:
            self.store.sound_alarms(agent.id, ORDER_ALARMS, holding, self.now())
            (self._sounded.add if holding else self._sounded.discard)(agent.id)
        if ending_cap:
            self.store.sound_alarms(agent.id, {AlertKind.ORDER_CAP}, {}, self.now())
            self._capped.discard(agent.id)

    def _sound_cap(self, agent: Agent, message: str) -> None:
        if agent.id not in self._capped:  # once per episode, not per refused submit
            text = f"{message}; its own risk rails should have stopped it"
            self.store.sound_alarms(
                agent.id, {AlertKind.ORDER_CAP}, {AlertKind.ORDER_CAP: text}, self.now()
            )
            self._capped.add(agent.id)

    def _note_positions(self, agent_id: str, positions: list[dict]) -> None:
        with self._lock:
            self._positions[agent_id] = (positions, self.now())

    def _note_follows(
        self, agent_id: str, method: str, path: str, request: bytes, answer: bytes
    ) -> None:
        try:
            if method == "DELETE":
                change = FollowChange(
                    agent_id, "unfollowed", (path.rsplit("/", 1)[1][:64],), self.now()
                )
            elif method == "POST":
                followee = str(json.loads(request)["user_id"])[:64]
                change = FollowChange(agent_id, "followed", (followee,), self.now())
            else:
                following = json.loads(answer)["following"]
                if not isinstance(following, list):
                    return
                ids = tuple(str(user_id)[:64] for user_id in following[:1000])
                change = FollowChange(agent_id, "listed", ids, self.now())
        except (ValueError, KeyError, TypeError):
            return  # an answer that is not what the contract says teaches nothing
        if any("\x00" in user_id for user_id in change.user_ids):
            return  # no platform id holds a NUL, which PostgreSQL could not keep anyway
        with self._lock:
            self._follows.append(change)

    def flush(self) -> None:
        """Write the positions listed and the follows confirmed since the last flush; a
        store that cannot take them keeps them waiting (newer listings of positions
        replacing older ones, the oldest follows going first), reported to `health`."""
        with self._lock:
            positions, self._positions = self._positions, {}
            follows, self._follows = list(self._follows), deque(maxlen=FOLLOWS_WAITING)
        if positions and not self._wrote(self.book.record_positions, positions):
            with self._lock:
                self._positions = {**positions, **self._positions}
        if follows and not self._wrote(self.follows.record, follows):
            with self._lock:
                self._follows = deque([*follows, *self._follows], maxlen=FOLLOWS_WAITING)

    def _wrote(self, write: Callable[..., None], *args: Any) -> bool:
        """Whether `write(*args)` reached the store; a store that cannot take it never
        fails the agent's call, it is reported to `health`."""
        try:
            write(*args)
        except DatabaseError as exc:
            self.health.failed("order book", exc)
            return False
        self.health.worked("order book")
        return True

    async def _send(
        self, method: str, path: str, query: str, body: bytes, platform_auth: str | None
    ) -> Relayed:
        headers = {"content-type": "application/json"}
        if platform_auth:
            headers["authorization"] = platform_auth
        url = f"/{path}?{query}" if query else f"/{path}"

        def call() -> Relayed:
            answer = self._http.request(method, url, content=body, headers=headers)
            kept = {name: answer.headers[name] for name in _PASSED_BACK if name in answer.headers}
            return Relayed(answer.status, answer.body, kept)

        try:
            answer = await asyncio.get_running_loop().run_in_executor(self._calls, call)
        except HttpError:
            self._answered(False)
            return _refused(502, "platform_unreachable", "the platform did not answer")
        self._answered(answer.status not in _UNAVAILABLE)
        return answer

    def _answered(self, up: bool) -> None:
        with self._lock:
            if up:
                self._down = None
            else:
                since, failed = self._down or (self.now(), 0)
                self._down = (since, failed + 1)

    def reach(self) -> tuple[datetime | None, int]:
        """Since when the platform has not answered the relay (None: it answers), and how
        many calls failed since; a 502, 503 or 504 is no answer."""
        with self._lock:
            return self._down or (None, 0)

    async def aclose(self) -> None:
        """Drop the calls not yet sent and close the idle connections; a call upstream
        finishes on its own, within its timeout."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._http.close()
