"""Who follows whom, as the platform confirmed it through the gateway's relay.

The relay sees each follow and unfollow an agent makes with its own credentials, and each
listing of its subscriptions; the listing is the truth and replaces what was known. A
followee is a platform account: another agent's (`agents.platform_user_id`) or a person's.
A retired agent's account has left the social graph (the platform contract: retiring an
account ends its follows, both ways), so no follow by it or of it is read back, though the
rows stay as the relay last saw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import col, delete, select

from orchestrator.lifecycle import Phase
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent, Follow, utc


def _standing() -> sa.ColumnElement[bool]:
    """The follows neither of whose ends is a retired agent."""
    retired = select(Agent.id).where(Agent.phase == Phase.RETIRED)
    gone = retired.with_only_columns(col(Agent.platform_user_id)).where(
        col(Agent.platform_user_id).is_not(None)
    )
    return col(Follow.agent_id).not_in(retired) & col(Follow.followee_user_id).not_in(gone)


@dataclass(frozen=True)
class FollowChange:
    """What the platform confirmed of one agent's follows: that it `followed` or
    `unfollowed` the account in `user_ids`, or `listed` all it follows."""

    agent_id: str
    kind: Literal["followed", "unfollowed", "listed"]
    user_ids: tuple[str, ...]
    at: datetime


class FollowBook:
    """Writes and reads of the `follows` table."""

    def __init__(self, store: Store) -> None:
        self.session = store.session

    def record(self, changes: Sequence[FollowChange]) -> None:
        """Apply `changes` in their order, in one transaction. A listing replaces what
        was known of that agent; an agent no longer in the store is passed over."""
        agent_ids = {change.agent_id for change in changes}
        with self.session() as s:
            live = set(s.exec(select(Agent.id).where(col(Agent.id).in_(agent_ids))).all())
            known = select(Follow.agent_id, Follow.followee_user_id, Follow.since)
            before: dict[str, dict[str, datetime]] = {agent_id: {} for agent_id in live}
            for agent_id, user_id, since in s.exec(known.where(col(Follow.agent_id).in_(live))):
                before[agent_id][user_id] = since
            after = {agent_id: dict(follows) for agent_id, follows in before.items()}
            for change in changes:
                if (follows := after.get(change.agent_id)) is None:
                    continue
                since = {u: follows.get(u, change.at) for u in change.user_ids}
                if change.kind == "listed":
                    after[change.agent_id] = since
                elif change.kind == "followed":
                    follows.update(since)
                else:
                    for user_id in change.user_ids:
                        follows.pop(user_id, None)
            gone = [(a, u) for a, follows in before.items() for u in follows if u not in after[a]]
            new = [
                {"agent_id": a, "followee_user_id": u, "since": at}
                for a, follows in after.items()
                for u, at in follows.items()
                if u not in before[a]
            ]
            if gone:
                pair = sa.tuple_(col(Follow.agent_id), col(Follow.followee_user_id))
                s.exec(delete(Follow).where(pair.in_(gone)))
            if new:
                s.execute(sa.insert(Follow), new)
            s.commit()

    def last_followed(self, agent_id: str) -> datetime | None:
        """When the relay last saw the platform confirm a follow by `agent_id` (wall time);
        None while it follows no one."""
        newest = select(sa.func.max(Follow.since)).where(Follow.agent_id == agent_id)
        with self.session() as s:
            return utc(s.exec(newest).one())

    def around(self, agent_id: str, user_id: str | None) -> tuple[list[str], list[str]]:
        """Whom `agent_id` follows and who follows its account `user_id`, by agent name
        (an account outside the fleet by its platform id), each sorted."""
        following = (
            select(Follow.followee_user_id, Agent.name)
            .join(Agent, col(Agent.platform_user_id) == col(Follow.followee_user_id), isouter=True)
            .where(Follow.agent_id == agent_id, _standing())
        )
        followers = (
            select(Agent.name)
            .join(Follow, col(Follow.agent_id) == col(Agent.id))
            .where(Follow.followee_user_id == user_id, _standing())
        )
        with self.session() as s:
            named = [name or followee for followee, name in s.exec(following).all()]
            fans = list(s.exec(followers).all()) if user_id else []
        return sorted(named), sorted(fans)

    def edges(self) -> list[tuple[str, str]]:
        """Every standing (agent id, followee user id)."""
        query = select(Follow.agent_id, Follow.followee_user_id).where(_standing())
        with self.session() as s:
            return [(agent_id, user_id) for agent_id, user_id in s.exec(query).all()]
