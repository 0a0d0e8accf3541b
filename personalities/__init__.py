"""Personalities (DESIGN §4.5): the schema, population files and archetypes, a seeded sampler.

Orchestrator-side only: agents receive their personality as JSON at bootstrap and never
import this package (it uses pydantic).
"""

from personalities._population import (
    ARCHETYPES,
    Population,
    PopulationError,
    load_population,
    parse_population,
)
from personalities._sampler import sample
from personalities._schema import (
    CAP_BIASES,
    FREQUENCIES,
    STRATEGIES,
    Personality,
    Strategy,
)

__all__ = [
    "ARCHETYPES",
    "CAP_BIASES",
    "FREQUENCIES",
    "STRATEGIES",
    "Personality",
    "Population",
    "PopulationError",
    "Strategy",
    "load_population",
    "parse_population",
    "sample",
]
