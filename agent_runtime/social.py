"""Whom an agent follows: a pure, seeded policy shaped by its personality.

An agent looks at the platform's leaderboard and follows accounts the way people do:
- how many it follows grows with `sentiment_weight` (2 to 12);
- it notices accounts that hold its preferred sectors first;
- it leans to the popular (weight ∝ followers + 1, the preferential attachment that
  makes a few accounts famous and most obscure) and, unless it is a contrarian, to
  recent winners; a contrarian follows the crowd's favourites whatever their return,
  the better to fade them.

It makes up its mind at a human pace: a first review follows a couple of accounts, then
one review per market day makes at most one unfollow (the worst persistent loser) and
one new follow, until it follows as many as it wants. Choosing a few at a time, each
time among accounts as popular as the earlier choices made them, is what lets a few
become famous. The same inputs and seed give the same choices.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

LOSER = -0.03  # return since opening at or below which an account is a persistent loser
CONTRARIAN = 0.5  # contrarian_tendency from which an agent follows differently
FIRST_FOLLOWS = 2  # how many a first review follows; then one a day


class Candidate(NamedTuple):
    """An account one might follow, as the leaderboard shows it."""

    user_id: str
    return_: float
    followers: int
    sectors: frozenset[str] = frozenset()


class Review(NamedTuple):
    """What one review decides."""

    follow: tuple[str, ...] = ()
    unfollow: tuple[str, ...] = ()


def budget(personality: Mapping) -> int:
    """How many accounts this personality wants to follow."""
    return 2 + round(10 * float(personality.get("sentiment_weight", 0.0)))


def appeal(personality: Mapping, candidate: Candidate) -> float:
    """How likely this personality is to pick `candidate` (relative weight > 0)."""
    preferred = set(personality.get("sector_preferences") or ())
    shared = len(candidate.sectors & preferred) / len(candidate.sectors) if candidate.sectors else 0
    noticed = 0.25 + shared  # sectors it cares about catch its eye
    popularity = candidate.followers + 1.0
    if float(personality.get("contrarian_tendency", 0.0)) >= CONTRARIAN:
        return noticed * popularity**1.2
    form = math.exp(10 * max(-0.1, min(0.1, candidate.return_)))
    return noticed * popularity * form


def pick(
    personality: Mapping, candidates: Iterable[Candidate], count: int, rng: random.Random
) -> list[str]:
    """Up to `count` distinct accounts, drawn by appeal without replacement."""
    ranked = sorted(candidates, key=lambda c: c.user_id)
    weights = [appeal(personality, c) for c in ranked]
    chosen: list[str] = []
    while len(chosen) < min(count, len(ranked)):
        (index,) = rng.choices(range(len(ranked)), weights=weights)
        chosen.append(ranked[index].user_id)
        weights[index] = 0.0
    return chosen


def review(
    personality: Mapping,
    me: str,
    leaderboard: Sequence[Candidate],
    following: Iterable[str],
    rng: random.Random,
    *,
    first: bool,
) -> Review:
    """Today's changes to whom `me` follows."""
    following = set(following)
    seen = {c.user_id: c for c in leaderboard}
    losers = sorted(
        (seen[f] for f in following if f in seen and seen[f].return_ <= LOSER),
        key=lambda c: (c.return_, c.user_id),
    )
    unfollow = (losers[0].user_id,) if losers and not first else ()
    keeping = len(following) - len(unfollow)
    want = min(FIRST_FOLLOWS if first else 1, budget(personality) - keeping)
    others = [c for c in leaderboard if c.user_id != me and c.user_id not in following]
    return Review(tuple(pick(personality, others, max(0, want), rng)), unfollow)


def sample_graph(
    personalities: Mapping[str, Mapping],
    returns: Mapping[str, float],
    sectors: Mapping[str, frozenset[str]],
    seed: int,
    days: int = 5,
) -> dict[str, set[str]]:
    """A fleet's follow graph: agents arrive one by one in a seeded order and review
    their follows on arrival, then once a day for `days` days. Reproducible by `seed`."""
    rng = random.Random(seed)
    order = sorted(personalities)
    rng.shuffle(order)
    graph: dict[str, set[str]] = {}
    followers: dict[str, int] = dict.fromkeys(order, 0)

    def board(present: Iterable[str]) -> list[Candidate]:
        return [
            Candidate(a, returns.get(a, 0.0), followers[a], sectors.get(a, frozenset()))
            for a in present
        ]

    def apply(agent: str, change: Review) -> None:
        for gone in change.unfollow:
            graph[agent].discard(gone)
            followers[gone] -= 1
        for new in change.follow:
            graph[agent].add(new)
            followers[new] += 1

    for index, agent in enumerate(order):
        graph[agent] = set()
        present = order[:index]
        apply(agent, review(personalities[agent], agent, board(present), (), rng, first=True))
    for _ in range(days):
        for agent in order:
            change = review(
                personalities[agent], agent, board(order), graph[agent], rng, first=False
            )
            apply(agent, change)
    return graph
