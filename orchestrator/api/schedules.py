"""Operator endpoints for schedules and reports (`fleet schedule`, `fleet report`)."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# which name objects local to the router's factory.

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from orchestrator.api.errors import ApiError
from orchestrator.operations.sampling import Sampling
from orchestrator.operations.scheduler import FleetScheduler
from orchestrator.operations.schedules import (
    MAX_EVERY_SECONDS,
    RampSpec,
    ReportSpec,
    ramp_spec,
    report_spec,
)
from orchestrator.operations.views import iso
from orchestrator.state.store import Store
from orchestrator.state.tables import Schedule


class RampRequest(Sampling):
    """`POST /v1/schedules/ramp`: grow or shrink the fleet to `to`, `step` agents at a time."""

    to: int = Field(ge=0, le=1000)
    step: int = Field(ge=1, le=1000)
    every_seconds: int = Field(ge=1, le=MAX_EVERY_SECONDS)
    retire: Literal["newest", "oldest"] = "newest"


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


def schedules_router(scheduler: FleetScheduler, store: Store) -> APIRouter:
    """The `/v1/schedules` and `/v1/reports` routes (the `Gatekeeper` checks the token)."""
    router = APIRouter(prefix="/v1", tags=["schedules"])

    def answer(response: Response, schedule: Schedule, created: bool) -> dict:
        response.status_code = 201 if created else 200
        return {"created": created, **schedule_view(schedule, scheduler)}

    @router.get("/schedules")
    def list_schedules() -> list[dict]:
        """Every schedule, oldest first, with when it runs next."""
        return [schedule_view(s, scheduler) for s in scheduler.book.all()]

    @router.post("/schedules/ramp")
    async def add_ramp(response: Response, body: RampRequest) -> dict:
        """A ramp plan from the fleet's size now; the same plan again returns the running one."""
        sampling = Sampling.model_validate(body.model_dump(include=set(Sampling.model_fields)))
        sampling.check()
        start = len(await run_in_threadpool(store.live))
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
        return answer(response, *await scheduler.add_ramp(spec))

    @router.post("/schedules/report")
    async def add_report(response: Response, body: ReportSpec) -> dict:
        """A daily report at a local time; the same time again returns the existing one."""
        return answer(response, *await scheduler.add_report(body))

    @router.delete("/schedules/{schedule_id:path}")  # any text: a wrong one is named
    async def remove_schedule(schedule_id: str) -> dict:
        """Stop and delete a schedule (what it already did stays done)."""
        return schedule_view(await scheduler.remove(schedule_id), scheduler)

    @router.get("/reports")
    def list_reports(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict]:
        """The latest fleet reports, newest first."""
        return scheduler.book.reports(limit)

    @router.post("/reports", status_code=201)
    async def make_report() -> dict:
        """A report of the last 24 hours, now; stored but not sent to the webhook."""
        return await run_in_threadpool(scheduler.report_now)

    return router
