"""An agent's circle on the platform: whom it follows, and what they traded lately.

Once per market day the agent reviews its follows (`agent_runtime.social.review`) against
the platform's leaderboard, seeded by its id and the day, and follows or unfollows with
its own credentials. A process started on a market day the agent already followed someone
(the bootstrap's `followed_at`) only reads whom it follows: a second review would follow
one more each restart. Every cycle it reads the feed of its followees' fills, which
reaches its strategy as the social signal.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from agent_runtime.account import AccountLink
from agent_runtime.contract import without_nul
from agent_runtime.social import Candidate, review
from agent_runtime.strategies._base import SocialView
from platform_client import PlatformError

log = logging.getLogger("agent.circle")
FEED_WINDOW = timedelta(days=2)  # market time: older trades are no signal
LEADERBOARD_SIZE = 200


class Circle:
    """Follows and the social feed of one agent."""

    def __init__(
        self,
        agent_id: str,
        personality: Mapping,
        account: AccountLink,
        followed_on: datetime | None = None,
    ) -> None:
        """`followed_on`: the market time of the agent's last follow, if it is known."""
        self.agent_id = agent_id
        self.personality = personality
        self.account = account
        self.following: set[str] | None = None  # unknown until the first review
        self.reviewed_on = _day(followed_on) if followed_on else None

    def review(self, now: datetime, universe: Mapping[str, Mapping]) -> str | None:
        """Today's review of whom to follow, if not done yet; returns an error or None.
        `universe` is the gateway's, by symbol: an account is seen by its holdings' sectors."""
        day = _day(now)
        if day == self.reviewed_on and self.following is not None:
            return None
        sectors = {symbol: row["sector"] for symbol, row in universe.items()}
        session, client = self.account.session, self.account.client
        try:
            self.following = set(session.call(client.subscriptions)["following"])
            if day == self.reviewed_on:
                return None  # reviewed by an earlier process today
            first = not self.following  # not "first in this process": a restart is no debut
            board = session.call(client.leaderboard, LEADERBOARD_SIZE)
            # Its followees' rows too: in a large fleet a loser sinks off the top of the board.
            board += session.call(client.leaderboard, LEADERBOARD_SIZE, following=True)
            seen = {leader.user_id: leader for leader in board if not leader.me}
            candidates = [
                Candidate(
                    leader.user_id,
                    leader.return_,
                    leader.followers,
                    frozenset(sectors[s] for s in leader.symbols if s in sectors),
                )
                for leader in seen.values()
            ]
            rng = random.Random(f"{self.agent_id}:{day}")
            change = review(self.personality, "", candidates, self.following, rng, first=first)
            for user_id in change.unfollow:
                session.call(client.unfollow, user_id)
                self.following.discard(user_id)
            for user_id in change.follow:
                session.call(client.follow, user_id)
                self.following.add(user_id)
        except PlatformError as exc:
            return f"follow review failed: {exc}"
        self.reviewed_on = day
        if change.follow or change.unfollow:
            log.info(
                "follows: +%d −%d, now %d",
                len(change.follow),
                len(change.unfollow),
                len(self.following),
            )
        return None

    def trades(self, now: datetime) -> list[SocialView]:
        """Recent fills of the accounts followed; none while the feed is unreachable."""
        if not self.following:
            return []
        session, client = self.account.session, self.account.client
        try:
            feed = session.call(client.social_feed, now - FEED_WINDOW)
        except PlatformError as exc:
            log.warning("social feed unavailable this cycle: %s", exc)
            return []
        return [
            SocialView(
                t.symbol,
                t.side,
                # a person's name: no NUL, which would cost the decision its record
                without_nul(t.display_name[:40]),
                datetime.fromisoformat(t.at),
            )
            for t in feed
        ]


def _day(moment: datetime) -> str:
    """The market day of a market time, as reviews are counted."""
    return moment.strftime("%Y-%m-%d")
