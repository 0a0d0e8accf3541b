"""The store's errors; every message is safe to show an operator.

StoreError
 ├── NotFound           no agent (or schedule) matches the reference
 ├── Ambiguous          an id prefix matches more than one agent
 ├── Conflict           the request contradicts what the store already holds
 └── StoreUnavailable   the store cannot be opened at all
"""

from __future__ import annotations


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
