"""Schedules kept in the store: ramp plans that grow or shrink the fleet, and reports.

A ramp plan moves the fleet from its size when the plan was made (`start`) toward `to`,
`step` agents every `every_seconds`. Its k-th step (k counted from the plan's creation,
not from the last run) asks for `start ± k·step`, capped at `to`, and only ever moves the
fleet in the plan's direction: running a step twice, late, or after a daemon restart
asks for the same size, so nothing is spawned or retired twice. A report schedule fires
daily at a local time. What a schedule is and when it last ran live here; when it runs
is the scheduler's business (`orchestrator.scheduler`). No I/O beyond the store.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Field as Column
from sqlmodel import Session, SQLModel, col, select

from orchestrator.sampling import Sampling
from orchestrator.store import Alert, Conflict, NotFound, utc

MAX_EVERY_SECONDS = 366 * 86_400


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


class Schedule(SQLModel, table=True):
    """One schedule: its kind, its spec (JSON) and how its runs went."""

    __tablename__ = "schedules"

    id: str = Column(primary_key=True, max_length=40)
    kind: str = Column(max_length=16)  # ramp | report
    spec: str
    created_at: datetime = Column(sa_type=_tz())
    runs: int = 0
    last_run_at: datetime | None = Column(default=None, sa_type=_tz())
    last_result: str | None = None
    done_at: datetime | None = Column(default=None, sa_type=_tz())  # a ramp at its target


class Report(SQLModel, table=True):
    """A fleet report; `key` is `<schedule>:<day>` for scheduled ones, so a day has one."""

    __tablename__ = "reports"

    id: int | None = Column(default=None, primary_key=True)
    key: str = Column(max_length=80, unique=True)
    at: datetime = Column(sa_type=_tz())
    body: str


class RampSpec(BaseModel):
    """A ramp plan: from `start` agents to `to`, `step` at a time every `every_seconds`."""

    model_config = ConfigDict(extra="forbid")

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


class ReportSpec(BaseModel):
    """A daily report at `at` (HH:MM, or HH:MM:SS) in `timezone`."""

    model_config = ConfigDict(extra="forbid")

    at: str = "16:30"
    timezone: str = "America/New_York"

    @field_validator("at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a time of day like 16:30") from None
        return parsed.strftime("%H:%M:%S" if parsed.second else "%H:%M")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. America/New_York, UTC)") from None
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


class ScheduleBook:
    """The schedules and reports tables."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def all(self) -> list[Schedule]:
        """Every schedule, oldest first."""
        query = select(Schedule).order_by(col(Schedule.created_at), col(Schedule.id))
        with self._session() as s:
            return [_aware(x) for x in s.exec(query).all()]

    def get(self, schedule_id: str) -> Schedule:
        """The schedule with this id."""
        with self._session() as s:
            schedule = s.get(Schedule, schedule_id)
        if schedule is None:
            raise NotFound(f"no schedule {schedule_id!r} (see `fleet schedule ls`)")
        return _aware(schedule)

    def add_ramp(self, spec: RampSpec, now: datetime) -> tuple[Schedule, bool]:
        """Store a ramp plan, or return the running one if it is the same plan (a retry);
        a different plan while one runs is a Conflict: two plans would fight."""
        with self._session() as s:
            for other in s.exec(select(Schedule).where(Schedule.kind == "ramp")).all():
                if other.done_at is not None:
                    continue
                running = RampSpec.model_validate_json(other.spec)
                if running.model_dump(exclude={"start"}) == spec.model_dump(exclude={"start"}):
                    return _aware(other), False
                raise Conflict(
                    f"ramp {other.id} is still running (to {running.to}); "
                    f"remove it first with `fleet schedule rm {other.id}`"
                )
            schedule = Schedule(
                id=f"ramp-{secrets.token_hex(3)}",
                kind="ramp",
                spec=spec.model_dump_json(),
                created_at=now,
            )
            s.add(schedule)
            s.commit()
            return schedule, True

    def add_report(self, spec: ReportSpec, now: datetime) -> tuple[Schedule, bool]:
        """Store a daily report schedule, or return the one already at that time."""
        with self._session() as s:
            for other in s.exec(select(Schedule).where(Schedule.kind == "report")).all():
                if ReportSpec.model_validate_json(other.spec) == spec:
                    return _aware(other), False
            schedule = Schedule(
                id=f"report-{secrets.token_hex(3)}",
                kind="report",
                spec=spec.model_dump_json(),
                created_at=now,
            )
            s.add(schedule)
            s.commit()
            return schedule, True

    def remove(self, schedule_id: str) -> Schedule:
        """Delete a schedule; its reports stay."""
        with self._session() as s:
            schedule = s.get(Schedule, schedule_id)
            if schedule is None:
                raise NotFound(f"no schedule {schedule_id!r} (see `fleet schedule ls`)")
            s.delete(schedule)
            s.commit()
            return _aware(schedule)

    def record_run(self, schedule_id: str, now: datetime, result: str, done: bool) -> None:
        """Note a run's outcome (a schedule removed meanwhile is left removed)."""
        with self._session() as s:
            schedule = s.get(Schedule, schedule_id, with_for_update=True)
            if schedule is None:
                return
            schedule.runs += 1
            schedule.last_run_at, schedule.last_result = now, result[:500]
            if done and schedule.done_at is None:
                schedule.done_at = now
            s.add(schedule)
            s.commit()

    def save_report(self, key: str, body: dict, now: datetime, alert: str | None) -> bool:
        """Store report `key` (a second run of the same key replaces its body) and, the
        first time only, queue `alert` for the webhook in the same transaction. Returns
        whether the report is new."""
        text = json.dumps(body, sort_keys=True)
        with self._session() as s:
            existing = s.exec(select(Report).where(Report.key == key)).first()
            if existing is not None:
                existing.body, existing.at = text, now
                s.add(existing)
                s.commit()
                return False
            s.add(Report(key=key, at=now, body=text))
            if alert is not None:
                s.add(Alert(at=now, kind="report", text=alert))
            s.commit()
            return True

    def reports(self, limit: int = 30) -> list[dict]:
        """The latest reports' bodies, newest first."""
        query = select(Report).order_by(col(Report.id).desc()).limit(limit)
        with self._session() as s:
            return [json.loads(r.body) for r in s.exec(query).all()]


def _aware(schedule: Schedule) -> Schedule:
    schedule.created_at = utc(schedule.created_at)
    schedule.last_run_at = utc(schedule.last_run_at)
    schedule.done_at = utc(schedule.done_at)
    return schedule
