"""The bootstrap contract between the gateway and an agent (DESIGN §4.2), typed on both sides.

The gateway builds a `Bootstrap` and sends `to_json()`; the agent reads the reply with
`Bootstrap.from_json()`, which names the first field that is missing or of the wrong
kind. Standard library only: the agent image carries no pydantic. Nothing here may log
the platform password it carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from agent_runtime.risk import RiskLimits

MAX_ERROR = 2000  # characters of its last error that an agent's heartbeat may carry


def without_nul(text: str) -> str:
    """`text` with each NUL as U+FFFD. No text crosses the gateway holding a NUL, either
    way: PostgreSQL cannot keep one, so the gateway refuses a request holding one, and it
    serves none an agent could record."""
    return text.replace("\x00", "\ufffd")


def reportable(error: str | None) -> str | None:
    """An error as a heartbeat carries it: at most `MAX_ERROR` characters, without a NUL.
    An error that quotes a platform's or a provider's text must not cost the agent its
    heartbeat."""
    return None if error is None else without_nul(error[:MAX_ERROR])


class ContractError(ValueError):
    """A bootstrap reply that does not follow the contract; the message names the field."""


class PlatformAccess(NamedTuple):
    """The agent's own login on the platform; its calls go through the gateway's relay
    (`/v1/platform/...`), the one thing a confined agent can reach. The password never
    shows in repr."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"PlatformAccess(username={self.username!r})"


class Schedule(NamedTuple):
    """How often the agent heartbeats, and how much it spreads its beats."""

    cycle_seconds: float
    jitter_seconds: float


class ClockSpec(NamedTuple):
    """The market clock: `time_scale` market seconds per wall second from `anchor`, and
    the trading hours (always | nyse)."""

    time_scale: float
    anchor: datetime
    hours: str


class Bootstrap(NamedTuple):
    """Everything an agent needs beyond its three environment variables."""

    agent_id: str
    name: str
    strategy: str
    personality: dict[str, Any] | None
    platform: PlatformAccess | None
    schedule: Schedule
    risk_limits: RiskLimits
    clock: ClockSpec
    paused: bool  # the kill switch: a restart while paused must not trade first
    # When the platform last confirmed a follow by this agent (wall time): a process started
    # on that market day does not review its follows again (absent from an older gateway)
    followed_at: datetime | None = None
    # What its last process learned of each kind of event ({type: {score, trades, ...}}),
    # to go on from (absent from an older gateway)
    catalysts: dict[str, Any] | None = None
    # The event that opened each position it holds, and its entry ({symbol: {catalyst,
    # entry}}), so a trade closed after a restart still teaches (absent from an older gateway)
    open_trades: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The reply body of `GET /v1/agent/bootstrap`."""
        return self._asdict() | {
            "platform": self.platform and self.platform._asdict(),
            "schedule": self.schedule._asdict(),
            "risk_limits": self.risk_limits._asdict(),
            "clock": self.clock._asdict() | {"anchor": self.clock.anchor.isoformat()},
            "followed_at": self.followed_at and self.followed_at.isoformat(),
        }

    @classmethod
    def from_json(cls, body: object) -> Bootstrap:
        """Parse a bootstrap reply, or raise ContractError naming the bad field."""
        data = _mapping(body, "bootstrap")
        platform = data.get("platform")
        clock = _mapping(data.get("clock"), "clock")
        followed_at = data.get("followed_at")
        return cls(
            agent_id=_get(data, "agent_id", str),
            name=_get(data, "name", str),
            strategy=_get(data, "strategy", str),
            personality=_mapping(data["personality"], "personality")
            if data.get("personality") is not None
            else None,
            platform=None
            if platform is None
            else _build(PlatformAccess, _mapping(platform, "platform"), "platform."),
            schedule=_build(Schedule, _mapping(data.get("schedule"), "schedule"), "schedule."),
            risk_limits=_build(
                RiskLimits, _mapping(data.get("risk_limits"), "risk_limits"), "risk_limits."
            ),
            clock=ClockSpec(
                time_scale=_get(clock, "time_scale", float, "clock."),
                anchor=_moment(_get(clock, "anchor", str, "clock."), "clock.anchor"),
                hours=_get(clock, "hours", str, "clock."),
            ),
            paused=_get(data, "paused", bool),
            followed_at=None
            if followed_at is None
            else _moment(_get(data, "followed_at", str), "followed_at"),
            catalysts=None
            if data.get("catalysts") is None
            else _mapping(data["catalysts"], "catalysts"),
            open_trades=None
            if data.get("open_trades") is None
            else _mapping(data["open_trades"], "open_trades"),
        )


def _moment(text: str, where: str) -> datetime:
    """An ISO 8601 time with its offset (market and wall times are compared as such)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ContractError(f"{where}: {text!r} has no offset from UTC")
    return moment


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ContractError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _get(data: dict[str, Any], name: str, kind: type, prefix: str = "") -> Any:
    if name not in data:
        raise ContractError(f"{prefix}{name}: missing")
    value = data[name]
    # JSON has one number type: an int is a fine float, but a bool is no number.
    fits = isinstance(value, kind) or (kind is float and isinstance(value, int))
    if not fits or (kind is not bool and isinstance(value, bool)):
        raise ContractError(f"{prefix}{name}: expected {kind.__name__}, got {value!r:.40}")
    return float(value) if kind is float else value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """A flat named tuple from `data`, each field checked against its annotated type."""
    kinds = {"str": str, "float": float, "int": int, "bool": bool}
    # NamedTuple keeps a string annotation as a ForwardRef; its argument is the type's name
    named = {name: kind.__forward_arg__ for name, kind in cls.__annotations__.items()}
    return cls(**{name: _get(data, name, kinds[named[name]], prefix) for name in cls._fields})
