"""Typed results of platform calls: small named tuples built from the JSON bodies.

Named tuples rather than dataclasses: the agent imports these at every start, and a
dataclass costs its import about 0.5 ms to define (and `dataclasses` itself, with
`inspect`, about 6 ms), where a named tuple costs 0.07 ms (docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any, NamedTuple


class Credentials(NamedTuple):
    """An agent account as create-agent returns it; the password never shows in repr."""

    user_id: str
    username: str
    email: str
    password: str
    role: str
    created_by: str

    def __repr__(self) -> str:
        return (
            f"Credentials(user_id={self.user_id!r}, username={self.username!r}, "
            f"email={self.email!r}, role={self.role!r}, created_by={self.created_by!r})"
        )

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


class AccessToken(NamedTuple):
    """A login's bearer token; the token never shows in repr."""

    access_token: str
    token_type: str
    expires_in: int

    def __repr__(self) -> str:
        return f"AccessToken(token_type={self.token_type!r}, expires_in={self.expires_in!r})"


class Order(NamedTuple):
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


class Position(NamedTuple):
    """Shares held of one symbol, marked to market."""

    symbol: str
    qty: float
    avg_price: float
    price: float
    market_value: float
    unrealized_pl: float


class Portfolio(NamedTuple):
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


class Leader(NamedTuple):
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


class SocialTrade(NamedTuple):
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
