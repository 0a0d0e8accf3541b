"""Operator endpoints for rollouts of new agent images (`fleet rollout`)."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from orchestrator.lifecycle import UNFINISHED, RolloutState
from orchestrator.operations.views import rollout_view
from orchestrator.state.rollouts import RolloutBook
from orchestrator.state.store import Store

_WANTED = {
    "pause": RolloutState.PAUSED,
    "resume": RolloutState.ROLLING,
    "undo": RolloutState.ROLLED_BACK,
}


def rollouts_router(rollouts: RolloutBook, store: Store, now: Callable[[], datetime]) -> APIRouter:
    """`/v1/rollout`: the rollout in force and the ones before it, and the operator's
    pause, resume and undo."""
    router = APIRouter(prefix="/v1", tags=["operator"])

    def fleet_size() -> int:
        counts = store.phase_counts()
        return sum(counts.get(phase, 0) for phase in UNFINISHED)

    @router.get("/rollout")
    def status() -> dict:
        """The latest rollouts, newest first, and the live fleet's size."""
        return {
            "fleet": fleet_size(),
            "rollouts": [rollout_view(r) for r in rollouts.history()],
        }

    @router.post("/rollout/{command}")
    async def command(command: Literal["pause", "resume", "undo"]) -> dict:
        """Pause the rollout in flight (no new batch), resume it, or undo it (every agent
        back on the old image); 409 when there is none to act on."""
        record = await run_in_threadpool(rollouts.command, _WANTED[command], now())
        return rollout_view(record)

    return router
