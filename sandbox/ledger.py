"""The sandbox's business rules: accounts, logins, paper fills and portfolios.

Each public method is one transaction. Idempotency is structural: account ids are derived
from the controller's idempotency key and `(account, client_order_id)` is unique, so a
retried request finds the first outcome instead of creating a second one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from feeds.market import SimulatedMarket
from feeds.universe import security
from sandbox.store import Account, Order, Position, Subscription

_ACCOUNT_NAMESPACE = uuid.UUID("0b3f6d1c-7a2e-4c55-9e8f-3d1a6b2c4e90")
QTY_DECIMALS = 6


class SandboxError(Exception):
    """A request the platform refuses; answered as `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OrderRequest:
    """A validated order: exactly one of `qty` and `notional`."""

    client_order_id: str
    symbol: str
    side: str
    qty: float | None
    notional: float | None
    rationale: str | None


def _cents(dollars: float) -> int:
    return round(dollars * 100)


def _dollars(cents: int) -> float:
    return cents / 100


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "agent"


def password_hash(password: str) -> str:
    """Passwords are 256-bit random strings made here, so one SHA-256 is enough."""
    return hashlib.sha256(password.encode()).hexdigest()


def order_view(order: Order) -> dict:
    """An order as the API returns it."""
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "qty": order.qty,
        "notional": order.notional,
        "status": order.status,
        "filled_qty": order.filled_qty,
        "filled_avg_price": order.filled_avg_price,
        "reject_reason": order.reject_reason,
        "rationale": order.rationale,
        "created_at": order.created_at.isoformat(),
    }


class Ledger:
    """The sandbox's state transitions over one database."""

    def __init__(
        self,
        engine: sa.Engine,
        market: SimulatedMarket,
        secret: bytes,
        now: Callable[[], datetime],
        default_cash: float = 100_000.0,
    ) -> None:
        self.engine = engine
        self.market = market
        self.secret = secret
        self.now = now
        self.default_cash = default_cash

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _password(self, user_id: str) -> str:
        # Derived, not stored: a replayed create-agent can answer the same password.
        digest = hmac.new(self.secret, f"password:{user_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    # -- controller ---------------------------------------------------------

    def create_account(
        self, key: str, display_name: str, profile: dict, starting_cash: float | None
    ) -> tuple[dict, bool]:
        """Create an agent account, or replay the one made earlier with the same key."""
        body = {"display_name": display_name, "profile": profile, "starting_cash": starting_cash}
        request_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        user_id = str(uuid.uuid5(_ACCOUNT_NAMESPACE, key))
        with self._session() as s:
            account = s.get(Account, user_id)
            created = account is None
            if account is None:
                cash = _cents(starting_cash if starting_cash is not None else self.default_cash)
                username = f"{_slug(display_name)}-{user_id[:8]}"
                account = Account(
                    user_id=user_id,
                    username=username,
                    email=f"{username}@agents.sandbox.invalid",
                    display_name=display_name,
                    profile=json.dumps(profile, sort_keys=True),
                    password_hash=password_hash(self._password(user_id)),
                    cash_cents=cash,
                    starting_cash_cents=cash,
                    idempotency_key=key,
                    request_hash=request_hash,
                    created_at=self.now(),
                )
                s.add(account)
                try:
                    s.commit()
                except sa.exc.IntegrityError:  # the same key raced us: replay theirs
                    s.rollback()
                    account = s.get(Account, user_id)
                    created = False
            if account is None:
                raise SandboxError(409, "conflict", "account creation raced; retry")
            if account.request_hash != request_hash:
                raise SandboxError(
                    409,
                    "idempotency_conflict",
                    "idempotency_key was already used with a different request body",
                )
        return self._credentials(account), created

    def _credentials(self, account: Account) -> dict:
        return {
            "user_id": account.user_id,
            "username": account.username,
            "email": account.email,
            "password": self._password(account.user_id),
            "role": "agent",
            "created_by": "system",
        }

    def retire_account(self, user_id: str) -> dict:
        """Disable an account, which ends its follows both ways (it leaves the social
        graph); disabling a disabled account changes nothing."""
        with self._session() as s:
            account = s.get(Account, user_id, with_for_update=True)
            if account is None:
                raise SandboxError(404, "not_found", f"no account {user_id}")
            if account.status != "disabled":
                account.status = "disabled"
                account.disabled_at = self.now()
                s.add(account)
                either = (Subscription.follower_id == user_id) | (
                    Subscription.followee_id == user_id
                )
                s.exec(delete(Subscription).where(either))
                s.commit()
            return {"user_id": user_id, "status": account.status}

    def accounts(self) -> list[dict]:
        """Every account the controller created, with its idempotency key."""
        with self._session() as s:
            rows = s.exec(select(Account).order_by(col(Account.created_at))).all()
        return [
            {
                "user_id": a.user_id,
                "username": a.username,
                "display_name": a.display_name,
                "email": a.email,
                "status": a.status,
                "idempotency_key": a.idempotency_key,
                "created_at": a.created_at.isoformat(),
                "last_login_at": a.last_login_at.isoformat() if a.last_login_at else None,
            }
            for a in rows
        ]

    # -- auth ---------------------------------------------------------------

    def login(self, username: str, password: str) -> Account:
        """The account for these credentials; 401 if wrong, 403 if disabled."""
        with self._session() as s:
            account = s.exec(select(Account).where(Account.username == username)).first()
            if account is None or not hmac.compare_digest(
                account.password_hash, password_hash(password)
            ):
                raise SandboxError(401, "invalid_credentials", "wrong username or password")
            if account.status != "active":
                raise SandboxError(403, "account_disabled", "this account is disabled")
            account.last_login_at = self.now()
            s.add(account)
            s.commit()
            return account

    def active_account(self, user_id: str) -> Account:
        """The account behind a valid token, refusing disabled ones."""
        with self._session() as s:
            account = s.get(Account, user_id)
        if account is None:
            raise SandboxError(401, "invalid_token", "the token's account does not exist")
        if account.status != "active":
            raise SandboxError(403, "account_disabled", "this account is disabled")
        return account

    # -- trading ------------------------------------------------------------

    def submit(self, user_id: str, req: OrderRequest) -> tuple[Order, bool]:
        """Fill an order at the current price, or replay the order with this client id."""
        sec = security(req.symbol)
        if sec is None:
            raise SandboxError(422, "unknown_symbol", f"unknown symbol {req.symbol!r}")
        with self._session() as s:
            account = s.get(Account, user_id, with_for_update=True)
            if account is None or account.status != "active":
                raise SandboxError(403, "account_disabled", "this account is disabled")
            earlier = s.exec(
                select(Order).where(
                    Order.user_id == user_id, Order.client_order_id == req.client_order_id
                )
            ).first()
            if earlier is not None:
                return earlier, False
            now = self.now()
            price = self.market.price(sec.symbol, now)
            qty = req.qty if req.qty is not None else (req.notional or 0) / price
            qty = round(qty, QTY_DECIMALS)
            if qty <= 0:
                raise SandboxError(
                    422, "invalid_quantity", "the order is for less than 1e-6 shares"
                )
            position = s.get(Position, (user_id, sec.symbol), with_for_update=True)
            held = position.qty if position else 0.0
            if req.side == "sell" and qty > held + 1e-9:
                raise SandboxError(
                    422,
                    "insufficient_position",
                    f"cannot sell {qty:g} {sec.symbol}: {held:g} held",
                )
            order = Order(
                order_id=str(uuid.uuid4()),
                user_id=user_id,
                client_order_id=req.client_order_id,
                symbol=sec.symbol,
                side=req.side,
                qty=req.qty,
                notional=req.notional,
                status="filled",
                rationale=req.rationale,
                created_at=now,
            )
            cost = _cents(qty * price)
            if req.side == "buy" and cost > account.cash_cents:
                order.status = "rejected"
                order.reject_reason = (
                    f"insufficient cash: {qty:g} {sec.symbol} at {price:.2f} costs "
                    f"{_dollars(cost):.2f}, cash is {_dollars(account.cash_cents):.2f}"
                )
            else:
                self._fill(s, account, position, order, qty, price, cost)
            s.add(order)
            s.commit()
            return order, True

    @staticmethod
    def _fill(
        s: Session,
        account: Account,
        position: Position | None,
        order: Order,
        qty: float,
        price: float,
        cost: int,
    ) -> None:
        order.filled_qty = qty
        order.filled_avg_price = price
        if position is None:
            position = Position(user_id=account.user_id, symbol=order.symbol, qty=0.0, cost_cents=0)
        if order.side == "buy":
            account.cash_cents -= cost
            position.cost_cents += cost
            position.qty = round(position.qty + qty, QTY_DECIMALS)
        else:
            account.cash_cents += cost
            # Cost basis leaves in proportion to the shares sold.
            position.cost_cents -= round(position.cost_cents * qty / position.qty)
            position.qty = round(position.qty - qty, QTY_DECIMALS)
        s.add(account)
        if position.qty > 0:
            s.add(position)
        elif sa.inspect(position).persistent:
            s.delete(position)

    def orders(self, user_id: str, limit: int) -> list[dict]:
        """The account's orders, newest first."""
        query = (
            select(Order)
            .where(Order.user_id == user_id)
            .order_by(col(Order.created_at).desc())
            .limit(limit)
        )
        with self._session() as s:
            return [order_view(o) for o in s.exec(query).all()]

    def portfolio(self, user_id: str) -> dict:
        """Cash, positions marked to the current price, and equity."""
        now = self.now()
        with self._session() as s:
            account = s.get(Account, user_id)
            positions = s.exec(select(Position).where(Position.user_id == user_id)).all()
        if account is None:
            raise SandboxError(404, "not_found", "no such account")
        rows, value = [], 0
        for p in sorted(positions, key=lambda p: p.symbol):
            price = self.market.price(p.symbol, now)
            market_value = _cents(p.qty * price)
            value += market_value
            rows.append(
                {
                    "symbol": p.symbol,
                    "qty": p.qty,
                    "avg_price": round(_dollars(p.cost_cents) / p.qty, 4),
                    "price": price,
                    "market_value": _dollars(market_value),
                    "unrealized_pl": _dollars(market_value - p.cost_cents),
                }
            )
        return {
            "cash": _dollars(account.cash_cents),
            "equity": _dollars(account.cash_cents + value),
            "starting_cash": _dollars(account.starting_cash_cents),
            "positions": rows,
            "as_of": now.isoformat(),
        }
