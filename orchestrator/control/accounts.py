"""Agents' platform accounts: created and disabled through the controller API, sealed at rest.

The idempotency key of an account is the agent's id, so provisioning that is retried or
interrupted by a crash finds the same account instead of making a second one. Credentials
leave this module only sealed (for the store) or opened for the agent's own bootstrap;
they never reach a log line or an error message.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken

from feeds.calendar import trading_day
from orchestrator.state.orders import PlacedOrder
from platform_client import (
    NotFound,
    Order,
    PlatformClient,
    PlatformError,
    Position,
    TradingSession,
)


@dataclass(frozen=True)
class Account:
    """A provisioned account as the store keeps it."""

    user_id: str
    username: str
    sealed: str = field(repr=False)


@dataclass(frozen=True)
class Flattened:
    """What selling an account's positions achieved."""

    sold: tuple[Order, ...]  # filled sales
    left: tuple[str, ...]  # "SYMBOL qty (why)", still held

    def describe(self) -> str:
        """One line for the agent's timeline."""
        sold = ", ".join(f"{o.symbol} {o.filled_qty:g}" for o in self.sold) or "nothing"
        if not self.left:
            return f"positions flattened: sold {sold}"
        return f"flatten incomplete: sold {sold}; still held {', '.join(self.left)}"


def placed(order: Order) -> PlacedOrder | None:
    """The order as the fleet's order book keeps it; None without a usable timestamp or
    with numbers that are not finite."""
    try:
        placed_at = datetime.fromisoformat(order.created_at or "")
        qty = float(order.filled_qty or 0.0)
        price = None if order.filled_avg_price is None else float(order.filled_avg_price)
    except (TypeError, ValueError):
        return None
    if placed_at.tzinfo is None or not all(map(math.isfinite, (qty, price or 0.0))):
        return None
    return PlacedOrder(
        client_order_id=str(order.client_order_id)[:64],
        order_id=str(order.order_id)[:64],
        symbol=str(order.symbol)[:16],
        side=str(order.side)[:8],
        status=str(order.status)[:16],
        qty=qty,
        price=price,
        reject_reason=order.reject_reason,
        placed_at=placed_at,
        market_day=trading_day(placed_at),
    )


def flatten_order_id(agent_id: str, symbol: str) -> str:
    """The one client order id of an agent's closing sale of `symbol`: a retried or
    interrupted flatten replays the same order instead of selling twice."""
    return f"flatten-{agent_id}-{symbol}"[:48]


class Accounts:
    """Controller-side account operations for one platform."""

    def __init__(self, client: PlatformClient, cipher: Fernet) -> None:
        self.client = client
        self.cipher = cipher

    @property
    def base_url(self) -> str:
        """Where the agents reach the platform."""
        return self.client.base_url

    def create(self, agent_id: str, name: str, strategy: str) -> Account:
        """Create (or find again) the account of one agent."""
        credentials = self.client.create_agent(
            idempotency_key=agent_id, display_name=name, profile={"strategy": strategy}
        )
        secret = json.dumps({"username": credentials.username, "password": credentials.password})
        sealed = self.cipher.encrypt(secret.encode()).decode()
        return Account(credentials.user_id, credentials.username, sealed)

    def disable(self, user_id: str) -> None:
        """Disable an account; one that no longer exists counts as disabled."""
        try:
            self.client.retire_agent(user_id)
        except NotFound:
            return

    @contextmanager
    def _as_agent(
        self, sealed: str, deadline_seconds: float
    ) -> Iterator[tuple[PlatformClient, TradingSession]]:
        """A client and session logged in (lazily) with the agent's own credentials."""
        creds = self.open(sealed)
        client = PlatformClient(self.base_url, deadline=max(1.0, min(10.0, deadline_seconds)))
        try:
            yield client, TradingSession(client, creds["username"], creds["password"])
        finally:
            client.close()

    def flatten(self, agent_id: str, sealed: str, deadline_seconds: float) -> Flattened:
        """Sell every position of the agent's account: at least one pass, then more
        until none is left or the deadline passes."""
        give_up = time.monotonic() + max(deadline_seconds, 0.0)
        sold: list[Order] = []
        why: dict[str, str] = {}
        with self._as_agent(sealed, deadline_seconds) as (client, session):

            def holdings() -> list[Position] | None:
                try:
                    return [p for p in session.call(client.portfolio).positions if p.qty > 0]
                except PlatformError as exc:
                    why["*"] = str(exc)
                    return None

            held = holdings()
            while held != []:
                for position in held or []:
                    why[position.symbol] = self._sell(session, client, agent_id, position, sold)
                if time.monotonic() >= give_up:
                    break
                time.sleep(0.5)
                held = holdings()
            if held:
                held = holdings()
        if held is None:
            return Flattened(tuple(sold), (f"positions unknown: {why['*']}",))
        return Flattened(
            tuple(sold), tuple(f"{p.symbol} {p.qty:g} ({why.get(p.symbol)})" for p in held)
        )

    @staticmethod
    def _sell(
        session: TradingSession,
        client: PlatformClient,
        agent_id: str,
        position: Position,
        sold: list[Order],
    ) -> str:
        """Sell one whole position; returns why it is not sold (if it is not)."""
        try:
            order = session.call(
                client.submit_order,
                flatten_order_id(agent_id, position.symbol),
                position.symbol,
                "sell",
                qty=position.qty,
            )
        except PlatformError as exc:
            return str(exc)
        if order.status != "filled":
            return order.reject_reason or order.status
        sold.append(order)
        return "sold"

    def open(self, sealed: str) -> dict[str, str]:
        """The username and password inside sealed credentials."""
        try:
            return json.loads(self.cipher.decrypt(sealed.encode()))
        except InvalidToken:
            raise ValueError("stored credentials cannot be decrypted with this key") from None

    def close(self) -> None:
        """Close the platform client."""
        self.client.close()
