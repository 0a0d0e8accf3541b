"""The schedules and reports tables: what is scheduled, how its runs went, what it wrote.

A schedule's spec is kept as JSON text; what it means is `operations/schedules.py`'s
business, and when it runs the scheduler's. A scheduled report is stored once per day
and queued for the webhook in the same transaction, so it is sent exactly once.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlmodel import Session, col, select

from orchestrator.lifecycle import AlertKind
from orchestrator.state.errors import NotFound
from orchestrator.state.store import Store
from orchestrator.state.tables import Alert, Report, Schedule, utc
from orchestrator.untrusted import quoted


class ScheduleBook:
    """Reads and writes of the schedules and reports tables."""

    def __init__(self, store: Store) -> None:
        self.session = store.session

    def all(self, kind: str | None = None, *, running: bool = False) -> list[Schedule]:
        """Schedules oldest first, optionally of one kind, optionally only unfinished ones."""
        query = select(Schedule).order_by(col(Schedule.created_at), col(Schedule.id))
        if kind is not None:
            query = query.where(Schedule.kind == kind)
        if running:
            query = query.where(col(Schedule.done_at).is_(None))
        with self.session() as s:
            return [_aware(x) for x in s.exec(query).all()]

    def get(self, schedule_id: str) -> Schedule:
        """The schedule with this id."""
        with self.session() as s:
            return _aware(_found(s, schedule_id))

    def add(self, kind: str, spec: str, now: datetime) -> Schedule:
        """Store a new schedule of `kind` with its JSON `spec`."""
        schedule = Schedule(
            id=f"{kind}-{secrets.token_hex(3)}", kind=kind, spec=spec, created_at=now
        )
        with self.session() as s:
            s.add(schedule)
            s.commit()
        return schedule

    def remove(self, schedule_id: str) -> Schedule:
        """Delete a schedule; its reports stay."""
        with self.session() as s:
            schedule = _found(s, schedule_id)
            s.delete(schedule)
            s.commit()
            return _aware(schedule)

    def record_run(self, schedule_id: str, now: datetime, result: str, done: bool) -> None:
        """Note a run's outcome (a schedule removed meanwhile is left removed)."""
        with self.session() as s:
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
        with self.session() as s:
            existing = s.exec(select(Report).where(Report.key == key)).first()
            if existing is not None:
                existing.body, existing.at = text, now
                s.add(existing)
                s.commit()
                return False
            s.add(Report(key=key, at=now, body=text))
            if alert is not None:
                s.add(Alert(at=now, kind=AlertKind.REPORT, text=alert))
            s.commit()
            return True

    def reports(self, limit: int = 30) -> list[dict]:
        """The latest reports' bodies, newest first."""
        query = select(Report).order_by(col(Report.id).desc()).limit(limit)
        with self.session() as s:
            return [json.loads(r.body) for r in s.exec(query).all()]


def _found(session: Session, schedule_id: str) -> Schedule:
    """The schedule with this id; NotFound without one. An id holding a NUL is no id (and
    PostgreSQL refuses one in a query)."""
    schedule = None if "\x00" in schedule_id else session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"no schedule {quoted(schedule_id)} (see `fleet schedule ls`)")
    return schedule


def _aware(schedule: Schedule) -> Schedule:
    schedule.created_at = utc(schedule.created_at)
    schedule.last_run_at = utc(schedule.last_run_at)
    schedule.done_at = utc(schedule.done_at)
    return schedule
