"""The daemon's scheduler: runs the store's schedules on APScheduler's asyncio scheduler.

The store holds what each schedule is (`orchestrator.operations.schedules`); APScheduler only keeps
time, in memory, and is re-armed from the store at every start. A run the daemon missed
while it was down runs once on start: a ramp step asks for the size due by now (never
twice the same agents), a report is made for the day it missed. A run the store could not
take is the store's health (one line an episode, no traceback), and is tried again every
`retry_seconds` until it is made: runs are idempotent in the same way. Work runs in a
thread, so the event loop that serves agents' heartbeats never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from orchestrator.operations.commands import Commands
from orchestrator.operations.schedules import (
    RampSpec,
    ReportSpec,
    add_ramp,
    add_report,
    ramp_spec,
    report_spec,
)
from orchestrator.operations.summaries import format_report
from orchestrator.state.errors import DatabaseError, NotFound
from orchestrator.state.health import StoreHealth
from orchestrator.state.schedules import ScheduleBook
from orchestrator.state.tables import Schedule

log = logging.getLogger("fleet.scheduler")
REPORT_WINDOW = timedelta(hours=24)


def trigger_of(schedule: Schedule) -> BaseTrigger:
    """When a schedule fires: a ramp every `every_seconds` from its creation, a report
    daily at its local time."""
    if schedule.kind == "ramp":
        every = ramp_spec(schedule).every_seconds
        return IntervalTrigger(
            seconds=every, start_date=schedule.created_at + timedelta(seconds=every), timezone=UTC
        )
    spec = report_spec(schedule)
    moment = time.fromisoformat(spec.at)
    return CronTrigger(
        hour=moment.hour, minute=moment.minute, second=moment.second, timezone=spec.timezone
    )


class FleetScheduler:
    """Arms one APScheduler job per live schedule and carries out their runs."""

    def __init__(
        self,
        book: ScheduleBook,
        commands: Commands,
        report: Callable[[str, datetime, datetime], dict],
        now: Callable[[], datetime],
        health: StoreHealth,
        retry_seconds: float = 30.0,
    ) -> None:
        """`report(title, since, now)` builds a fleet report (`operations.reports`)."""
        self.book = book
        self.commands = commands
        self.report = report
        self.now = now
        self.health = health
        self.retry_seconds = retry_seconds
        self._aps = AsyncIOScheduler(timezone=UTC)
        # One run at a time: a catch-up and the schedule's own step may fire together.
        self._running = threading.Lock()

    async def add_ramp(self, spec: RampSpec) -> tuple[Schedule, bool]:
        """Store and arm a ramp plan, or return the same plan already running."""
        schedule, created = await asyncio.to_thread(add_ramp, self.book, spec, self.now())
        if created:
            await self.arm(schedule)
        return schedule, created

    async def add_report(self, spec: ReportSpec) -> tuple[Schedule, bool]:
        """Store and arm a daily report, or return the one already at that time."""
        schedule, created = await asyncio.to_thread(add_report, self.book, spec, self.now())
        if created:
            await self.arm(schedule)
        return schedule, created

    async def remove(self, schedule_id: str) -> Schedule:
        """Disarm and delete a schedule (what it already did stays done)."""
        schedule = await asyncio.to_thread(self.book.remove, schedule_id)
        self.disarm(schedule.id)
        return schedule

    async def start(self) -> None:
        """Start keeping time and arm every schedule in the store."""
        self._aps.start()
        for schedule in await asyncio.to_thread(self.book.all):
            await self.arm(schedule)

    def shutdown(self) -> None:
        """Stop keeping time; a run in progress finishes in its thread."""
        self._aps.shutdown(wait=False)

    def next_run(self, schedule_id: str) -> datetime | None:
        """When the schedule fires next, if it is armed."""
        job = self._aps.get_job(schedule_id)
        return job.next_run_time if job else None

    async def arm(self, schedule: Schedule) -> None:
        """Add the schedule's job (a finished ramp gets none); catch up a missed run."""
        if schedule.done_at is not None:
            return
        self._aps.add_job(
            self._fire,
            trigger_of(schedule),
            args=[schedule.id],
            id=schedule.id,
            name=f"{schedule.kind} {schedule.id}",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        if await asyncio.to_thread(self._missed, schedule):
            log.info(
                "schedule %s missed a run while the daemon was down: running it now", schedule.id
            )
            self._aps.add_job(
                self._fire, args=[schedule.id], id=f"{schedule.id}:catch-up", replace_existing=True
            )

    def disarm(self, schedule_id: str) -> None:
        """Remove the schedule's job, if it has one."""
        if self._aps.get_job(schedule_id):
            self._aps.remove_job(schedule_id)

    def _missed(self, schedule: Schedule) -> bool:
        now = self.now()
        if schedule.kind == "ramp":
            live = len(self.commands.store.live())
            return ramp_spec(schedule).wanted(schedule.created_at, now, live) is not None
        due = report_spec(schedule).last_due(now)
        last = schedule.last_run_at
        return due > schedule.created_at and (last is None or last < due)

    async def _fire(self, schedule_id: str) -> None:
        try:
            finished = await asyncio.to_thread(self.run, schedule_id)
        except DatabaseError as exc:
            self.health.failed("the scheduler", exc)  # logged once per episode
            self._aps.add_job(
                self._fire,
                "date",
                # APScheduler keeps the wall clock's time, not the fleet's `now`
                run_date=datetime.now(UTC) + timedelta(seconds=self.retry_seconds),
                args=[schedule_id],
                id=f"{schedule_id}:retry",
                replace_existing=True,
            )
            return
        except Exception:
            log.exception("schedule %s failed", schedule_id)
            return
        self.health.worked("the scheduler")
        if finished:
            self.disarm(schedule_id)

    def run(self, schedule_id: str) -> bool:
        """Carry out one run of a schedule now; returns whether the schedule is finished."""
        with self._running:
            try:
                schedule = self.book.get(schedule_id)
            except NotFound:
                return True  # removed while its run was queued
            if schedule.done_at is not None:
                return True  # finished by a run that fired beside this one
            now = self.now()
            if schedule.kind == "ramp":
                result, done = self._ramp_step(schedule, now)
            else:
                result, done = self._daily_report(schedule, now), False
            self.book.record_run(schedule.id, now, result, done)
        log.info("schedule %s: %s", schedule.id, result)
        return done

    def _ramp_step(self, schedule: Schedule, now: datetime) -> tuple[str, bool]:
        spec = ramp_spec(schedule)
        step, target = spec.target(schedule.created_at, now)
        done = target == spec.to
        size = spec.wanted(schedule.created_at, now, len(self.commands.store.live()))
        if size is None:
            return f"step {step}: the fleet is already at {target} or beyond", done
        scaled = self.commands.scale(size, spec.sampling, spec.retire == "newest")
        return (
            f"step {step}: scaled to {size} (+{len(scaled.spawned)} −{len(scaled.retiring)})",
            done,
        )

    def _daily_report(self, schedule: Schedule, now: datetime) -> str:
        spec = report_spec(schedule)
        day = spec.day(spec.last_due(now))
        report = self.report(f"daily report {day}", now - REPORT_WINDOW, now)
        new = self.book.save_report(f"{schedule.id}:{day}", report, now, format_report(report))
        sent = "queued for the webhook" if new else "already sent once, not again"
        return f"report for {day} written; {sent}"

    def report_now(self) -> dict:
        """A report of the last 24 hours made on request: stored, not sent."""
        now = self.now()
        report = self.report("fleet report", now - REPORT_WINDOW, now)
        self.book.save_report(f"manual:{now.isoformat()}", report, now, None)
        return report
