"""Schedules kept in the store: ramp plans that grow or shrink the fleet, and reports.

A ramp plan moves the fleet from its size when the plan was made (`start`) toward `to`,
`step` agents every `every_seconds`. Its k-th step (k counted from the plan's creation,
not from the last run) asks for `start ± k·step`, capped at `to`, and only ever moves the
fleet in the plan's direction: running a step twice, late, or after a daemon restart
asks for the same size, so nothing is spawned or retired twice. A report schedule fires
daily at a local time. What a schedule is and when it last ran live here; when it runs
is the scheduler's business (`operations/scheduler.py`); the rows are `state/schedules.py`'s.
No I/O.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from orchestrator.operations.sampling import Sampling
from orchestrator.state.errors import Conflict
from orchestrator.state.schedules import ScheduleBook
from orchestrator.state.tables import Schedule
from orchestrator.untrusted import Body, quoted

MAX_EVERY_SECONDS = 366 * 86_400


class RampSpec(Body):
    """A ramp plan: from `start` agents to `to`, `step` at a time every `every_seconds`."""

    to: int = Field(ge=0, le=1000)
    step: int = Field(ge=1, le=1000)
    every_seconds: int = Field(ge=1, le=MAX_EVERY_SECONDS)
    start: int = Field(ge=0, le=1000)
    retire: Literal["newest", "oldest"] = "newest"
    sampling: Sampling = Field(default_factory=Sampling)

    def target(self, created_at: datetime, now: datetime) -> tuple[int, int]:
        """The step due at `now` (0 before the first) and the fleet size it asks for."""
        k = max(0, int((now - created_at).total_seconds() // self.every_seconds))
        if self.to >= self.start:
            return k, min(self.to, self.start + k * self.step)
        return k, max(self.to, self.start - k * self.step)

    def wanted(self, created_at: datetime, now: datetime, live: int) -> int | None:
        """The size to scale to now, or None when the fleet is already there or beyond
        in the plan's direction (an operator who scaled further is not undone)."""
        _, size = self.target(created_at, now)
        growing = self.to >= self.start
        if (growing and live >= size) or (not growing and live <= size):
            return None
        return size


class ReportSpec(Body):
    """A daily report at `at` (HH:MM, or HH:MM:SS) in `timezone`."""

    at: str = "16:30"
    timezone: str = "America/New_York"

    @field_validator("at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{quoted(value)} is not a time of day like 16:30") from None
        return parsed.strftime("%H:%M:%S" if parsed.second else "%H:%M")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {quoted(value)} (e.g. America/New_York, UTC)"
            ) from None
        return value

    def last_due(self, now: datetime) -> datetime:
        """The latest scheduled moment at or before `now`."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        moment = datetime.combine(local.date(), time.fromisoformat(self.at), zone)
        return moment if moment <= now else moment - timedelta(days=1)

    def day(self, moment: datetime) -> str:
        """The local date a report made at `moment` is about."""
        return moment.astimezone(ZoneInfo(self.timezone)).date().isoformat()


def ramp_spec(schedule: Schedule) -> RampSpec:
    """The spec of a ramp schedule."""
    return RampSpec.model_validate_json(schedule.spec)


def report_spec(schedule: Schedule) -> ReportSpec:
    """The spec of a report schedule."""
    return ReportSpec.model_validate_json(schedule.spec)


def add_ramp(book: ScheduleBook, spec: RampSpec, now: datetime) -> tuple[Schedule, bool]:
    """Store a ramp plan, or return the running one if it is the same plan (a retry); a
    different plan while one runs is a Conflict: two plans would fight."""
    for other in book.all("ramp", running=True):
        running = ramp_spec(other)
        if running.model_dump(exclude={"start"}) == spec.model_dump(exclude={"start"}):
            return other, False
        raise Conflict(
            f"ramp {other.id} is still running (to {running.to}); "
            f"remove it first with `fleet schedule rm {other.id}`"
        )
    return book.add("ramp", spec.model_dump_json(), now), True


def add_report(book: ScheduleBook, spec: ReportSpec, now: datetime) -> tuple[Schedule, bool]:
    """Store a daily report schedule, or return the one already at that time."""
    for other in book.all("report"):
        if report_spec(other) == spec:
            return other, False
    return book.add("report", spec.model_dump_json(), now), True
