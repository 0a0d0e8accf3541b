"""Who follows whom, as the platform confirmed it through the gateway's relay.

The relay sees each follow and unfollow an agent makes with its own credentials, and each
listing of its subscriptions; the listing is the truth and replaces what was known. A
followee is a platform account: another agent's (`agents.platform_user_id`) or a person's.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, delete, select

from orchestrator.state.store import Store
from orchestrator.state.tables import Agent, Follow


class FollowBook:
    """Writes and reads of the `follows` table."""

    def __init__(self, store: Store) -> None:
        self.session = store.session

    def followed(self, agent_id: str, user_id: str, now: datetime) -> None:
        """The platform confirmed that `agent_id` follows `user_id`."""
        with self.session() as s:
            if s.get(Follow, (agent_id, user_id)) is None:
                s.add(Follow(agent_id=agent_id, followee_user_id=user_id, since=now))
                s.commit()

    def unfollowed(self, agent_id: str, user_id: str) -> None:
        """The platform confirmed that `agent_id` no longer follows `user_id`."""
        with self.session() as s:
            s.exec(
                delete(Follow).where(
                    Follow.agent_id == agent_id, Follow.followee_user_id == user_id
                )
            )
            s.commit()

    def listed(self, agent_id: str, user_ids: list[str], now: datetime) -> None:
        """The platform listed everyone `agent_id` follows: keep exactly those."""
        with self.session() as s:
            s.exec(
                delete(Follow).where(
                    Follow.agent_id == agent_id, col(Follow.followee_user_id).not_in(user_ids)
                )
            )
            known = set(
                s.exec(select(Follow.followee_user_id).where(Follow.agent_id == agent_id)).all()
            )
            for user_id in sorted(set(user_ids) - known):
                s.add(Follow(agent_id=agent_id, followee_user_id=user_id, since=now))
            s.commit()

    def around(self, agent_id: str, user_id: str | None) -> tuple[list[str], list[str]]:
        """Whom `agent_id` follows and who follows its account `user_id`, by agent name
        (an account outside the fleet by its platform id), each sorted."""
        following = (
            select(Follow.followee_user_id, Agent.name)
            .join(Agent, col(Agent.platform_user_id) == col(Follow.followee_user_id), isouter=True)
            .where(Follow.agent_id == agent_id)
        )
        followers = (
            select(Agent.name)
            .join(Follow, col(Follow.agent_id) == col(Agent.id))
            .where(Follow.followee_user_id == user_id)
        )
        with self.session() as s:
            named = [name or followee for followee, name in s.exec(following).all()]
            fans = list(s.exec(followers).all()) if user_id else []
        return sorted(named), sorted(fans)

    def edges(self) -> list[tuple[str, str]]:
        """Every (agent id, followee user id)."""
        with self.session() as s:
            return [(f.agent_id, f.followee_user_id) for f in s.exec(select(Follow)).all()]
