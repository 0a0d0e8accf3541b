"""The platform client's exceptions::

PlatformError            any failure; carries the platform's `code` and `message`
 ├── PlatformUnavailable  network errors, timeouts or 5xx, after the retries ran out
 │    └── BadAnswer       a success whose body is not the contract's document (a proxy's
 │                        page, another service at the URL): an outage to its callers
 ├── RateLimited          429 that outlasted the deadline (`retry_after` seconds)
 ├── AuthError            401: wrong credentials, wrong controller key, bad token
 ├── Forbidden            403: e.g. the account is disabled
 ├── NotFound             404
 ├── Conflict             409: e.g. an idempotency key reused with another body
 └── InvalidRequest       400/422: the request itself is wrong; never retried
"""

from __future__ import annotations


class PlatformError(Exception):
    """A platform call failed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.status = status
        self.code = code
        self.message = message


class PlatformUnavailable(PlatformError):
    """The platform could not be reached or kept failing (5xx)."""


class RateLimited(PlatformError):
    """The platform asked us to slow down for longer than the deadline allows."""

    def __init__(self, status: int, code: str, message: str, retry_after: float) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


class AuthError(PlatformError):
    """401: the credentials, controller key or access token were refused."""


class Forbidden(PlatformError):
    """403: authenticated but not allowed, e.g. a disabled account."""


class NotFound(PlatformError):
    """404: no such resource."""


class Conflict(PlatformError):
    """409: the request contradicts an earlier one."""


class InvalidRequest(PlatformError):
    """400/422: the request is malformed or breaks a rule; retrying cannot help."""


class BadAnswer(PlatformUnavailable):
    """A success whose body is not the document the contract describes. Its callers treat
    it as an outage and try again later; the client itself does not resend it."""


_BY_STATUS: dict[int, type[PlatformError]] = {
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    400: InvalidRequest,
    422: InvalidRequest,
}


def error_for(status: int, code: str, message: str) -> PlatformError:
    """The exception for a non-429 error status."""
    if status >= 500:
        return PlatformUnavailable(status, code, message)
    return _BY_STATUS.get(status, PlatformError)(status, code, message)
