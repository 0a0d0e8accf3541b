"""The store's errors; every message is safe to show an operator.

StoreError
 ├── NotFound           no agent (or schedule) matches the reference
 ├── Ambiguous          an id prefix matches more than one agent
 ├── Conflict           the request contradicts what the store already holds
 ├── StoreUnavailable   the store cannot be opened at all
 └── LeaseHeld          another daemon runs this fleet

`DatabaseError` is what the database itself raises while the store is open (unreachable,
disk full, …); boundaries catch it under this name and describe it with `failure_reason`,
so nothing outside `state/` imports the database library.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError as DatabaseError


class StoreError(Exception):
    """Base of the store's errors; messages are safe to show an operator."""


class NotFound(StoreError):
    """No agent matches the reference."""


class Ambiguous(StoreError):
    """An id prefix matches more than one agent."""


class Conflict(StoreError):
    """The request contradicts what the store already holds."""


class StoreUnavailable(StoreError):
    """The store cannot be opened: unreachable, refused, or not a database."""


class LeaseHeld(StoreError):
    """Another daemon runs this fleet (same state dir or same database); names it."""


def failure_reason(exc: BaseException) -> str:
    """The first line of what the database said, never its URL or password."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc or type(exc).__name__).strip().splitlines()[0][:300]


__all__ = [
    "Ambiguous",
    "Conflict",
    "DatabaseError",
    "LeaseHeld",
    "NotFound",
    "StoreError",
    "StoreUnavailable",
    "failure_reason",
]
