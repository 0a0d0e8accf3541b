"""The API's own errors: answered to the caller as `{"error": {"code", "message"}}`."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from orchestrator.state.errors import DatabaseError, failure_reason


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one error body every endpoint, and the Gatekeeper, answers with."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def store_unavailable(exc: DatabaseError) -> JSONResponse:
    """The answer to a request the store could not serve (503)."""
    return error_response(
        503, "store_unavailable", f"the store cannot be used now: {failure_reason(exc)}"
    )


class ApiError(Exception):
    """An error answered to the caller as `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class TooLarge(HTTPException):
    """A request body went past its route's cap while it was being read (413)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"the body may be at most {cap} bytes")
