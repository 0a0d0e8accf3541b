"""Operator endpoints for schedules and reports (`fleet schedule`, `fleet report`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from orchestrator.api.errors import ApiError, fleet_of
from orchestrator.api.operator import require_operator
from orchestrator.sampling import Sampling
from orchestrator.schedules import (
    MAX_EVERY_SECONDS,
    RampSpec,
    ReportSpec,
    Schedule,
    ramp_spec,
    report_spec,
)
from orchestrator.views import iso

if TYPE_CHECKING:
    from orchestrator.scheduler import FleetScheduler

router = APIRouter(prefix="/v1", tags=["schedules"], dependencies=[Depends(require_operator)])


class RampRequest(Sampling):
    """`POST /v1/schedules/ramp`: grow or shrink the fleet to `to`, `step` agents at a time."""

    to: int = Field(ge=0, le=1000)
    step: int = Field(ge=1, le=1000)
    every_seconds: int = Field(ge=1, le=MAX_EVERY_SECONDS)
    retire: Literal["newest", "oldest"] = "newest"


def _scheduler(request: Request) -> FleetScheduler:
    scheduler = fleet_of(request).scheduler
    if scheduler is None:
        raise ApiError(503, "starting", "the daemon is still starting; try again")
    return scheduler


def _every(seconds: int) -> str:
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def schedule_view(schedule: Schedule, scheduler: FleetScheduler) -> dict:
    """A schedule as the operator sees it, with a one-line plan and its next run."""
    if schedule.kind == "ramp":
        spec = ramp_spec(schedule)
        plan = f"{spec.start} → {spec.to} agents, {spec.step} every {_every(spec.every_seconds)}"
        detail = spec.model_dump(mode="json")
    else:
        report = report_spec(schedule)
        plan = f"fleet report daily at {report.at} {report.timezone}"
        detail = report.model_dump()
    return {
        "id": schedule.id,
        "kind": schedule.kind,
        "plan": plan,
        "spec": detail,
        "created_at": iso(schedule.created_at),
        "runs": schedule.runs,
        "last_run_at": iso(schedule.last_run_at),
        "last_result": schedule.last_result,
        "done_at": iso(schedule.done_at),
        "next_run_at": iso(scheduler.next_run(schedule.id)),
    }


@router.get("/schedules")
def list_schedules(request: Request) -> list[dict]:
    """Every schedule, oldest first, with when it runs next."""
    scheduler = _scheduler(request)
    return [schedule_view(s, scheduler) for s in scheduler.book.all()]


async def _created(request: Request, response: Response, schedule: Schedule, created: bool) -> dict:
    scheduler = _scheduler(request)
    if created:
        await scheduler.arm(schedule)
    response.status_code = 201 if created else 200
    return {"created": created, **schedule_view(schedule, scheduler)}


@router.post("/schedules/ramp")
async def add_ramp(request: Request, response: Response, body: RampRequest) -> dict:
    """A ramp plan from the fleet's size now; the same plan again returns the running one."""
    fleet = fleet_of(request)
    scheduler = _scheduler(request)
    sampling = Sampling.model_validate(body.model_dump(include=set(Sampling.model_fields)))
    sampling.check()
    start = len(await run_in_threadpool(fleet.store.live))
    if start == body.to:
        raise ApiError(422, "invalid_request", f"to: the fleet already has {start} agents")
    spec = RampSpec(
        to=body.to,
        step=body.step,
        every_seconds=body.every_seconds,
        start=start,
        retire=body.retire,
        sampling=sampling,
    )
    schedule, created = await run_in_threadpool(scheduler.book.add_ramp, spec, fleet.now())
    return await _created(request, response, schedule, created)


@router.post("/schedules/report")
async def add_report(request: Request, response: Response, body: ReportSpec) -> dict:
    """A daily report at a local time; the same time again returns the existing one."""
    scheduler = _scheduler(request)
    schedule, created = await run_in_threadpool(
        scheduler.book.add_report, body, fleet_of(request).now()
    )
    return await _created(request, response, schedule, created)


@router.delete("/schedules/{schedule_id}")
async def remove_schedule(request: Request, schedule_id: str) -> dict:
    """Stop and delete a schedule (what it already did stays done)."""
    scheduler = _scheduler(request)
    schedule = await run_in_threadpool(scheduler.book.remove, schedule_id)
    scheduler.disarm(schedule.id)
    return schedule_view(schedule, scheduler)


@router.get("/reports")
def list_reports(request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict]:
    """The latest fleet reports, newest first."""
    return _scheduler(request).book.reports(limit)


@router.post("/reports", status_code=201)
async def make_report(request: Request) -> dict:
    """A report of the last 24 hours, now; stored but not sent to the webhook."""
    return await run_in_threadpool(_scheduler(request).report_now)
