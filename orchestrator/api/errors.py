"""The API's own error type, and how a request proves who it is."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from orchestrator import keys


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


def operator_guard(operator_token: str) -> Callable[[Request], None]:
    """A dependency that rejects a request lacking the operator token."""

    def require_operator(request: Request) -> None:
        if not keys.tokens_equal(bearer(request), operator_token):
            raise ApiError(401, "unauthorized", "wrong or missing operator token")

    return require_operator
