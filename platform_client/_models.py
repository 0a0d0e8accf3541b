"""Typed results of platform calls: small frozen dataclasses built from the JSON bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Credentials:
    """An agent account as create-agent returns it; the password never shows in repr."""

    user_id: str
    username: str
    email: str
    password: str = field(repr=False)
    role: str
    created_by: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Credentials:
        return cls(
            data["user_id"],
            data["username"],
            data["email"],
            data["password"],
            data["role"],
            data["created_by"],
        )


@dataclass(frozen=True)
class AccessToken:
    """A login's bearer token."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int


@dataclass(frozen=True)
class Order:
    """An order and its outcome."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    status: str
    filled_qty: float
    filled_avg_price: float | None
    reject_reason: str | None = None
    replayed: bool = False  # True when the platform answered with an earlier order
    created_at: str | None = None  # ISO 8601, as the platform wrote it

    @classmethod
    def from_json(cls, data: dict[str, Any], replayed: bool = False) -> Order:
        return cls(
            data["order_id"],
            data["client_order_id"],
            data["symbol"],
            data["side"],
            data["status"],
            data["filled_qty"],
            data.get("filled_avg_price"),
            data.get("reject_reason"),
            replayed,
            data.get("created_at"),
        )


@dataclass(frozen=True)
class Position:
    """Shares held of one symbol, marked to market."""

    symbol: str
    qty: float
    avg_price: float
    price: float
    market_value: float
    unrealized_pl: float


@dataclass(frozen=True)
class Portfolio:
    """Cash, positions and equity."""

    cash: float
    equity: float
    positions: tuple[Position, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Portfolio:
        positions = tuple(
            Position(
                p["symbol"],
                p["qty"],
                p["avg_price"],
                p["price"],
                p["market_value"],
                p["unrealized_pl"],
            )
            for p in data["positions"]
        )
        return cls(data["cash"], data["equity"], positions)


@dataclass(frozen=True)
class Leader:
    """One account on the public leaderboard."""

    user_id: str
    display_name: str
    return_: float  # since the account opened
    followers: int
    symbols: tuple[str, ...]
    me: bool = False  # the caller's own account

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Leader:
        return cls(
            data["user_id"],
            data["display_name"],
            float(data["return"]),
            int(data["followers"]),
            tuple(data["symbols"]),
            bool(data.get("me", False)),
        )


@dataclass(frozen=True)
class SocialTrade:
    """A fill by an account one follows, as the social feed shows it."""

    order_id: str
    user_id: str
    display_name: str
    symbol: str
    side: str
    qty: float
    price: float | None
    at: str  # ISO 8601

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SocialTrade:
        return cls(
            data["order_id"],
            data["user_id"],
            data["display_name"],
            data["symbol"],
            data["side"],
            float(data["qty"]),
            data.get("price"),
            data["at"],
        )
