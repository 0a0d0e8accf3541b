"""The sandbox's social side: who follows whom, the public leaderboard, the follower's feed.

People on the platform publish their portfolios and follow each other. The leaderboard is
what anyone logged in may see of everyone (return, followers, the symbols held); the feed
is what only a follower sees: the recent fills of the accounts it follows.

The leaderboard is one ranking for every reader, made at most once every
`board_seconds` (as a platform caches its public boards): a fleet coming up reads it once
per agent, and each ranking reads every account and position.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from feeds.market import SimulatedMarket
from sandbox.ledger import SandboxError
from sandbox.store import Account, Order, Position, Subscription

BOARD_ROWS = 500  # the most a leaderboard call may ask for


def _return(equity_cents: int, starting_cents: int) -> float:
    """Return since the account opened (an account opened with less than a cent has none)."""
    return round(equity_cents / starting_cents - 1, 6) if starting_cents > 0 else 0.0


class Social:
    """Subscriptions, leaderboard and feed over the sandbox's database."""

    def __init__(
        self,
        engine: sa.Engine,
        market: SimulatedMarket,
        now: Callable[[], datetime],
        board_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.market = market
        self.now = now
        self.board_seconds = board_seconds
        self._board: tuple[float, str, list[dict]] | None = None  # (monotonic, as_of, rows)
        self._board_lock = threading.Lock()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def follow(self, follower_id: str, followee_id: str) -> bool:
        """Follow another account; returns False when already following."""
        if follower_id == followee_id:
            raise SandboxError(422, "invalid_subscription", "an agent cannot follow itself")
        with self._session() as s:
            # Locked, so a retirement cannot slip between this check and the follow.
            followee = s.get(Account, followee_id, with_for_update=True)
            if followee is None or followee.status != "active":
                raise SandboxError(404, "not_found", f"no active account {followee_id}")
            if s.get(Subscription, (follower_id, followee_id)) is not None:
                return False
            s.add(
                Subscription(
                    follower_id=follower_id, followee_id=followee_id, created_at=self.now()
                )
            )
            try:
                s.commit()
            except sa.exc.IntegrityError:
                return False
            return True

    def unfollow(self, follower_id: str, followee_id: str) -> None:
        """Stop following; not following is fine."""
        with self._session() as s:
            row = s.get(Subscription, (follower_id, followee_id))
            if row is not None:
                s.delete(row)
                s.commit()

    def subscriptions(self, user_id: str) -> dict:
        """Who the account follows and who follows it."""
        with self._session() as s:
            following = s.exec(
                select(Subscription.followee_id).where(Subscription.follower_id == user_id)
            ).all()
            followers = s.exec(
                select(Subscription.follower_id).where(Subscription.followee_id == user_id)
            ).all()
        return {"following": sorted(following), "followers": sorted(followers)}

    def leaderboard(self, user_id: str, limit: int, following: bool = False) -> dict:
        """Active accounts by return since they opened, best first: what anyone may see
        (only those the caller follows, if `following`); the caller's own row says `me`.
        `as_of` says when it was ranked."""
        as_of, rows = self._ranked()
        if following:
            followed = set(self.subscriptions(user_id)["following"])
            rows = [row for row in rows if row["user_id"] in followed]
        return {
            "accounts": [{**row, "me": row["user_id"] == user_id} for row in rows[:limit]],
            "as_of": as_of,
        }

    def _ranked(self) -> tuple[str, list[dict]]:
        # Under the lock, so readers arriving together wait for one ranking, not one each.
        with self._board_lock:
            if not self._board or time.monotonic() - self._board[0] >= self.board_seconds:
                ranked_at, now = time.monotonic(), self.now()
                self._board = (ranked_at, now.isoformat(), self._rank(now))
            return self._board[1:]

    def _rank(self, now: datetime) -> list[dict]:
        with self._session() as s:  # columns, not objects: there is a row per account
            accounts = s.exec(
                select(
                    Account.user_id,
                    Account.display_name,
                    Account.cash_cents,
                    Account.starting_cash_cents,
                ).where(Account.status == "active")
            ).all()
            positions = s.exec(select(Position.user_id, Position.symbol, Position.qty)).all()
            followers = dict(
                s.exec(
                    select(Subscription.followee_id, func.count()).group_by(
                        col(Subscription.followee_id)
                    )
                ).all()
            )
        value: Counter[str] = Counter()
        held: dict[str, list[str]] = {}
        prices: dict[str, float] = {}
        for p in positions:
            if p.symbol not in prices:
                prices[p.symbol] = self.market.price(p.symbol, now)
            value[p.user_id] += round(p.qty * prices[p.symbol] * 100)
            held.setdefault(p.user_id, []).append(p.symbol)
        ranked = sorted(
            (-_return(a.cash_cents + value[a.user_id], a.starting_cash_cents), a.user_id, a)
            for a in accounts
        )
        return [
            {
                "user_id": a.user_id,
                "display_name": a.display_name,
                "return": -loss,
                "followers": followers.get(a.user_id, 0),
                "symbols": sorted(held.get(a.user_id, [])),
            }
            for loss, _, a in ranked[:BOARD_ROWS]
        ]

    def feed(self, user_id: str, since: datetime, limit: int) -> dict:
        """Fills after `since` of the accounts `user_id` follows, newest first; only the
        follower sees them."""
        followed = select(Subscription.followee_id).where(Subscription.follower_id == user_id)
        query = (
            select(Order, Account.display_name)
            .join(Account, col(Account.user_id) == col(Order.user_id))
            .where(
                col(Order.user_id).in_(followed),
                Order.status == "filled",
                col(Order.created_at) > since,
            )
            .order_by(col(Order.created_at).desc())
            .limit(limit)
        )
        with self._session() as s:
            rows = s.exec(query).all()
        return {
            "trades": [
                {
                    "order_id": o.order_id,
                    "user_id": o.user_id,
                    "display_name": name,
                    "symbol": o.symbol,
                    "side": o.side,
                    "qty": o.filled_qty,
                    "price": o.filled_avg_price,
                    "at": o.created_at.isoformat(),
                }
                for o, name in rows
            ]
        }
