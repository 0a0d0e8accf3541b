"""How new agents' personalities are drawn, for spawns, scaling and ramp plans alike.

A request names a population (an archetype or an inline population), optionally a seed
and a strategy for all; without a seed, the spawn key seeds the draw, so replaying a spawn
draws the same personalities. Bad populations raise `PopulationError` naming the problem.
"""

from __future__ import annotations

import hashlib

from orchestrator.untrusted import Body
from personalities import ARCHETYPES, PopulationError, Strategy, parse_population, sample


class Sampling(Body):
    """How new agents' personalities are drawn: `population` is an archetype name or an
    inline population; without a seed, the spawn key seeds them (so a replay matches)."""

    strategy: Strategy | None = None
    seed: int | None = None
    population: str | dict = "balanced"

    def check(self) -> None:
        """Raise PopulationError now if this population could never be drawn from."""
        self.draw(1, "check")

    def draw(self, count: int, key: str) -> list[dict]:
        """`count` personalities for spawn `key`, as JSON-ready dicts."""
        if isinstance(self.population, str):
            if self.population not in ARCHETYPES:
                known = ", ".join(ARCHETYPES)
                raise PopulationError(
                    "population", [f"unknown archetype {self.population!r}; known: {known}"]
                )
            population = ARCHETYPES[self.population]
        else:
            population = parse_population(self.population, "population")
        seed = (
            self.seed
            if self.seed is not None
            else int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        )
        fleet = sample(count, seed, population)
        if self.strategy:
            fleet = [p.model_copy(update={"strategy": self.strategy}) for p in fleet]
        return [p.model_dump(mode="json") for p in fleet]
