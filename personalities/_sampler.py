"""Seeded sampling of personalities: the same seed and population give the same fleet.

Strategies are dealt by quota (largest remainder) and then shuffled, so any fleet follows
the population's mix as closely as its size allows; every other trait is drawn per agent.
Names are unique within a sample.
"""

from __future__ import annotations

import random

from feeds.universe import UNIVERSE
from personalities._population import Population
from personalities._schema import CapBias, Personality

_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "canny",
    "clever",
    "cool",
    "crisp",
    "daring",
    "eager",
    "fleet",
    "frank",
    "gentle",
    "grand",
    "keen",
    "lucky",
    "mellow",
    "nimble",
    "patient",
    "plucky",
    "quiet",
    "rapid",
    "sharp",
    "shrewd",
    "silent",
    "steady",
    "stoic",
    "swift",
    "tidy",
    "vivid",
    "wary",
    "wise",
)
_NOUNS = (
    "badger",
    "bison",
    "condor",
    "crane",
    "falcon",
    "ferret",
    "fox",
    "gecko",
    "heron",
    "ibis",
    "jaguar",
    "kestrel",
    "lynx",
    "marten",
    "merlin",
    "mink",
    "orca",
    "osprey",
    "otter",
    "owl",
    "panda",
    "puma",
    "raven",
    "seal",
    "shrike",
    "stoat",
    "swift",
    "tern",
    "tiger",
    "viper",
    "walrus",
    "wren",
)


def _quota(weights: dict[str, float], n: int) -> list[str]:
    exact = {k: w * n for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)
    for k in by_remainder[: n - sum(counts.values())]:
        counts[k] += 1
    return [k for k, c in counts.items() for _ in range(c)]


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = [k for k, w in weights.items() if w > 0]
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _cap_bias(rng: random.Random, population: Population, sectors: list[str]) -> CapBias:
    """A market-cap bias that leaves the agent something to trade: drawn among the
    population's biases that some symbol of `sectors` has ("mixed" always does)."""
    held = {sec.market_cap for sec in UNIVERSE if sec.sector in sectors} | {"mixed"}
    weights = {cap: w for cap, w in population.market_caps.items() if cap in held}
    return _pick(rng, weights) if any(w > 0 for w in weights.values()) else "mixed"


def sample(n: int, seed: int, population: Population) -> list[Personality]:
    """`n` personalities drawn from `population` with `seed`."""
    rng = random.Random(seed)
    strategies = _quota(population.strategies, n)
    rng.shuffle(strategies)
    names: set[str] = set()
    fleet = []
    for strategy in strategies:
        base = name = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}"
        while name in names:  # 1,024 pairs: bigger fleets get a number
            name = f"{base}-{rng.randrange(10, 1000)}"
        names.add(name)
        low, high = population.sectors_per_agent
        sectors = [s for s, w in population.sectors.items() if w > 0]
        count = min(rng.randint(low, high), len(sectors))
        chosen: list[str] = []
        while len(chosen) < count:
            pick = _pick(rng, {s: population.sectors[s] for s in sectors if s not in chosen})
            chosen.append(pick)

        def draw(field: str) -> float:
            bounds = getattr(population, field)
            return round(rng.uniform(bounds.low, bounds.high), 3)

        fleet.append(
            Personality(
                name=name,
                strategy=strategy,
                risk_tolerance=draw("risk_tolerance"),
                trading_frequency=_pick(rng, population.frequencies),
                news_sensitivity=draw("news_sensitivity"),
                sentiment_weight=draw("sentiment_weight"),
                contrarian_tendency=draw("contrarian_tendency"),
                sector_preferences=tuple(sorted(chosen)),
                market_cap_bias=_cap_bias(rng, population, chosen),
            )
        )
    return fleet
