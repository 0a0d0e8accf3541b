"""The API's own error type and the running-fleet handle that endpoints depend on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from orchestrator.daemon import Fleet


class ApiError(Exception):
    """An error answered to the caller as `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bearer(request: Request) -> str:
    """The bearer token of a request, or '' when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def fleet_of(request: Request) -> Fleet:
    """The running fleet the app serves."""
    return request.app.state.fleet
