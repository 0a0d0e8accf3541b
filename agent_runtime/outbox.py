"""Decision records on their way to the orchestrator: kept in order, sent in batches.

A batch goes when it holds `BATCH` records or the oldest has waited `WAIT_SECONDS`, and it
never exceeds `BATCH_BYTES` of JSON (under the gateway's 64 KiB body cap). While the
gateway is away the records wait, at most `PENDING` of them (the oldest go first). A
batch the gateway refuses as malformed is dropped, not retried: sending it again would
be refused again. A record too large to send alone is dropped too, and logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable

from agent_runtime.gateway import GatewayClient, GatewayError, Refused

log = logging.getLogger("agent.outbox")
BATCH = 10
WAIT_SECONDS = 30.0
BATCH_BYTES = 48_000
PENDING = 500


class Outbox:
    """The decision records not yet handed over."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.pending: deque[tuple[dict, int]] = deque(maxlen=PENDING)  # record, its size
        self.clock = clock
        self.sent_at = clock()

    def add(self, record: dict) -> None:
        """Queue one record."""
        size = len(json.dumps(record, separators=(",", ":")))
        if size > BATCH_BYTES:
            log.warning("decision record of cycle %s dropped: %d bytes", record["cycle"], size)
            return
        self.pending.append((record, size))

    def send(self, gateway: GatewayClient, *, force: bool = False) -> str | None:
        """Send the next batch if one is due (or `force`); returns an error or None."""
        waited = self.clock() - self.sent_at
        if not self.pending or not (force or len(self.pending) >= BATCH or waited >= WAIT_SECONDS):
            return None
        batch, size = [], 0
        for record, bytes_ in self.pending:
            if batch and (len(batch) >= BATCH * 5 or size + bytes_ > BATCH_BYTES):
                break
            batch.append(record)
            size += bytes_
        try:
            gateway.decisions(batch)
        except Refused as exc:
            self._done(len(batch))
            return f"decision records refused and dropped: {exc}"
        except GatewayError as exc:
            return f"decision records kept for later: {exc}"
        self._done(len(batch))
        return None

    def _done(self, count: int) -> None:
        for _ in range(count):
            self.pending.popleft()
        self.sent_at = self.clock()
