"""Log output of the daemon: human-readable lines, or JSON lines with FLEET_LOG_FORMAT=json.

A line about one agent passes `extra=about(agent_id, name)`: JSON lines then carry
`agent_id` and `agent` as fields, and text lines start with `[name]`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


def about(agent_id: str | None, name: str | None = None) -> dict[str, str]:
    """The `extra` of a log line about one agent."""
    return {"agent_id": agent_id or "", "agent": name or ""}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("agent_id", "agent"):
            if getattr(record, field, None):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(fmt: str) -> None:
    """Send `fleet.*` logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger("fleet")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
