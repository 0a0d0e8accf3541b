"""Population files: the mix and ranges a fleet's personalities are sampled from.

A population is YAML or TOML. Weights of one kind must sum to 1; ranges must lie inside
the schema's bounds; unknown keys, sectors or strategies are refused, and so is a value of
another type (YAML reads `yes` as true and `"0.5"` as text: neither is a number here).
Every problem is reported with the field and the reason, one line each (a key past 60
characters clipped, its length told). A few named archetypes ship here.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from feeds.universe import SECTORS
from personalities._schema import CapBias, Frequency, Strategy

MAX_FILE_BYTES = 256 * 1024
MAX_NAME = 60  # characters of a file's key that a problem shows


class _Yaml(yaml.SafeLoader):
    """YAML as people write numbers: `1e-3` and `2E5` are numbers, as in YAML 1.2. PyYAML
    follows YAML 1.1, where they are text, which a population's strict types would refuse."""


_Yaml.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class PopulationError(ValueError):
    """A population file is unreadable or invalid; `problems` holds one line per issue."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems


MAX_WEIGHT = 1e6  # relative weights beyond this add nothing but overflow


def _finite(weights: dict) -> dict:
    if any(not math.isfinite(w) or w > MAX_WEIGHT for w in weights.values()):
        raise ValueError(f"weights must be finite numbers up to {MAX_WEIGHT:g}")
    return weights


def _weights_sum_to_one(weights: dict) -> dict:
    _finite(weights)
    total = sum(weights.values())
    if weights and not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"weights sum to {total:g}, not 1")
    if any(w < 0 for w in weights.values()):
        raise ValueError("weights must not be negative")
    return weights


class Range(BaseModel):
    """An inclusive [low, high] range inside 0..1."""

    model_config = ConfigDict(extra="forbid", strict=True)

    low: float = Field(ge=0, le=1)
    high: float = Field(ge=0, le=1)

    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info) -> float:  # noqa: ANN001
        if "low" in info.data and high < info.data["low"]:
            raise ValueError("high is below low")
        return high


class Population(BaseModel):
    """What a fleet is sampled from."""

    model_config = ConfigDict(extra="forbid", strict=True)

    strategies: dict[Strategy, float] = Field(min_length=1)
    frequencies: dict[Frequency, float] = {
        "scalping": 0.1,
        "day": 0.35,
        "swing": 0.4,
        "position": 0.15,
    }
    market_caps: dict[CapBias, float] = {"large": 0.45, "mid": 0.25, "small": 0.1, "mixed": 0.2}
    sectors: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(SECTORS, 1.0))
    # a file's list is a pair here; each end is still strictly a whole number
    sectors_per_agent: tuple[StrictInt, StrictInt] = Field((1, 3), strict=False)
    risk_tolerance: Range = Range(low=0.1, high=0.9)
    news_sensitivity: Range = Range(low=0.0, high=1.0)
    sentiment_weight: Range = Range(low=0.0, high=1.0)
    contrarian_tendency: Range = Range(low=0.0, high=1.0)

    _sum = field_validator("strategies", "frequencies", "market_caps")(_weights_sum_to_one)

    @field_validator("sectors")
    @classmethod
    def _known_sectors(cls, sectors: dict[str, float]) -> dict[str, float]:
        unknown = [_named(name) for name in sorted(set(sectors) - set(SECTORS))]
        if unknown:
            raise ValueError(f"unknown sectors {unknown}; known: {', '.join(SECTORS)}")
        if not any(w > 0 for w in sectors.values()) or any(w < 0 for w in sectors.values()):
            raise ValueError("weights must be >= 0 with at least one above 0")
        return _finite(sectors)

    @field_validator("risk_tolerance")
    @classmethod
    def _risk_bounds(cls, value: Range) -> Range:
        if value.low < 0.1 or value.high > 0.9:
            raise ValueError("must lie within 0.1..0.9")
        return value

    @field_validator("sectors_per_agent")
    @classmethod
    def _sector_count(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1 <= low <= high <= len(SECTORS):
            raise ValueError(f"must be [low, high] with 1 <= low <= high <= {len(SECTORS)}")
        return value


def _range(low: float, high: float) -> Range:
    return Range(low=low, high=high)


ARCHETYPES: dict[str, Population] = {
    "balanced": Population(
        strategies={
            "news_momentum": 0.3,
            "contrarian": 0.2,
            "event_driven": 0.2,
            "sector_rotation": 0.2,
            "llm_analyst": 0.1,
        }
    ),
    "news-hounds": Population(
        strategies={"news_momentum": 0.6, "event_driven": 0.4},
        frequencies={"scalping": 0.3, "day": 0.7},
        news_sensitivity=_range(0.6, 1.0),
    ),
    "contrarians": Population(
        strategies={"contrarian": 1.0},
        contrarian_tendency=_range(0.6, 1.0),
        frequencies={"day": 0.3, "swing": 0.7},
    ),
    "long-term": Population(
        strategies={"sector_rotation": 0.7, "news_momentum": 0.3},
        frequencies={"swing": 0.4, "position": 0.6},
        risk_tolerance=_range(0.1, 0.5),
    ),
}


def _named(part: object) -> str:
    """A key of the file as a problem names it: clipped, so a pasted page comes back short."""
    name = str(part)
    return name if len(name) <= MAX_NAME else f"{name[:MAX_NAME]}… ({len(name):,} characters)"


def _problems(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        where = ".".join(_named(p) for p in error["loc"] if p != "[key]") or "population"
        lines.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return lines


def parse_population(data: object, source: str) -> Population:
    """Validate already-parsed population data."""
    if not isinstance(data, dict):
        raise PopulationError(source, ["the file must hold a mapping of settings"])
    for key in ("risk_tolerance", "news_sensitivity", "sentiment_weight", "contrarian_tendency"):
        if isinstance(data.get(key), list | tuple) and len(data[key]) == 2:
            data = {**data, key: {"low": data[key][0], "high": data[key][1]}}
    try:
        return Population.model_validate(data)
    except ValidationError as exc:
        raise PopulationError(source, _problems(exc)) from None


def load_population(ref: str) -> Population:
    """An archetype by name, or a population file (.yaml, .yml or .toml) by path."""
    if ref in ARCHETYPES:
        return ARCHETYPES[ref]
    path = Path(ref)
    try:
        with path.open("rb") as f:  # bounded: /dev/zero, say, never ends
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        known = ", ".join(ARCHETYPES)
        raise PopulationError(
            ref, [f"cannot read it ({exc.strerror}); archetypes: {known}"]
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise PopulationError(ref, [f"larger than {MAX_FILE_BYTES // 1024} KiB"])
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise PopulationError(ref, [f"not UTF-8 text (byte {exc.start})"]) from None
    kind = path.suffix.lstrip(".") or "YAML"
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.load(text, _Yaml)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise PopulationError(ref, [f"not valid {kind}: {str(exc).splitlines()[0]}"]) from None
    except RecursionError:
        raise PopulationError(ref, [f"not valid {kind}: nested too deeply"]) from None
    return parse_population(data, ref)
