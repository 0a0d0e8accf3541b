"""The daemon's loops beside the reconciler: retention, the lease's keeper, the
write-behind flushes of what the gateway answers from memory, and the refresh of the
agents it remembers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from orchestrator.state.errors import DatabaseError, LeaseHeld
from orchestrator.state.health import StoreHealth
from orchestrator.state.lease import FleetLease
from orchestrator.state.retention import compact
from orchestrator.state.store import Store

log = logging.getLogger("fleet.daemon")
RETENTION_EVERY_SECONDS = 3600


async def repeat(work: Callable[[], object], seconds: float, *, last: bool) -> None:
    """Call `work` in a worker thread every `seconds` until cancelled, and once more on
    the way out if `last` (a flush: nothing is left unwritten). A call that fails is
    logged, and the next one runs all the same."""
    try:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(work)
            except Exception:
                log.exception("%s failed", getattr(work, "__qualname__", "a background call"))
    finally:
        if last:
            await asyncio.to_thread(work)


async def retain(store: Store, days: float, health: StoreHealth) -> None:
    """Compact the store's history past the retention window, now and every hour."""
    while True:
        try:
            done = await asyncio.to_thread(compact, store, datetime.now(UTC) - timedelta(days=days))
        except DatabaseError as exc:
            health.failed("retention", exc)
        else:
            health.worked("retention")
            if done:
                log.info(
                    "retention: %s timeline entries, %s equity samples and %s alerts "
                    "older than %s days compacted",
                    done.events,
                    done.samples,
                    done.alerts,
                    f"{days:g}",
                )
        await asyncio.sleep(RETENTION_EVERY_SECONDS)


async def keep(lease: FleetLease, every: float) -> None:
    """Take the lease back after its connection broke (the reconciler does not act in the
    meantime); stop the daemon if another daemon holds it by then: two daemons must never
    act on one fleet."""
    while True:
        await asyncio.sleep(every)
        if await asyncio.to_thread(lease.held):
            continue
        log.error("lost the lease on the fleet's database: acting stops until it is back")
        while True:
            try:
                await asyncio.to_thread(lease.regain)
            except LeaseHeld as exc:
                log.error("%s; stopping so that no two daemons act", exc)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            except DatabaseError:
                await asyncio.sleep(every)
                continue
            log.warning("lease on the fleet's database taken back: acting again")
            break
