"""The door of the HTTP app: who may come in, how often, and how much they may bring.

Every request is authenticated here, before a byte of its body is read: agent routes
(`/v1/agent`, `/v1/feed`, `/v1/llm`, `/v1/platform`) by the agent's gateway token, then
held to the agent's rate (429 with `Retry-After` past it); the rest of `/v1` by the
operator token. The authenticated agent is handed to the routes in the request's state,
so a token is looked up once. A body larger than its route's cap is refused with 413: a declared
length at once, a streamed body as soon as it passes the cap, never buffered whole.
Pages, `/healthz` and `/metrics` pass (the dashboard checks its own session cookie).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from orchestrator import keys
from orchestrator.api.errors import TooLarge, error_response, store_unavailable
from orchestrator.gateway.rates import AgentRates
from orchestrator.state.errors import DatabaseError

AGENT_PREFIXES = ("/v1/agent/", "/v1/feed/", "/v1/llm/", "/v1/platform/")
AGENT_BODY_CAP = 64 * 1024
OPERATOR_BODY_CAP = 1024 * 1024
OTHER_BODY_CAP = 16 * 1024

# On every answer: no framing (clickjacking), no type sniffing, no referrer leaks.
SECURITY = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _refusal(
    status: int, code: str, message: str, retry_after: float | None = None
) -> JSONResponse:
    """The app's error answer, with the security headers the app's own answers get."""
    return _secured(error_response(status, code, message), retry_after)


def _secured(response: JSONResponse, retry_after: float | None = None) -> JSONResponse:
    response.headers.update({name.decode(): value.decode() for name, value in SECURITY})
    if retry_after is not None:
        response.headers["retry-after"] = str(math.ceil(retry_after))
    return response


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" else ""
    return ""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class Gatekeeper:
    """ASGI middleware: authenticate first, then let in at most the route's body cap."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        authenticate_agent: Callable[[str], Any],
        rates: AgentRates,
        operator_token: str,
        remembered_agent: Callable[[str], Any] = lambda _token: None,
    ) -> None:
        self.app = app
        self.authenticate_agent = authenticate_agent
        self.remembered_agent = remembered_agent  # memory only: asked on the event loop
        self.rates = rates
        self.operator_token = operator_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(AGENT_PREFIXES):
            cap = AGENT_BODY_CAP
            token = _bearer(scope)
            try:
                agent = self.remembered_agent(token) or await run_in_threadpool(
                    self.authenticate_agent, token
                )
            except DatabaseError as exc:
                await _secured(store_unavailable(exc))(scope, receive, send)
                return
            if agent is None:
                await _refusal(401, "unauthorized", "unknown or revoked agent token")(
                    scope, receive, send
                )
                return
            wait = self.rates.take(agent.id)
            if wait is not None:
                message = f"too many requests from this agent; retry in {math.ceil(wait)}s"
                await _refusal(429, "rate_limited", message, retry_after=wait)(scope, receive, send)
                return
            scope.setdefault("state", {})["agent"] = agent
        elif path.startswith("/v1/"):
            cap = OPERATOR_BODY_CAP
            if not keys.tokens_equal(_bearer(scope), self.operator_token):
                await _refusal(401, "unauthorized", "wrong or missing operator token")(
                    scope, receive, send
                )
                return
        else:
            cap = OTHER_BODY_CAP
        declared = _declared_length(scope)
        if declared is not None and declared > cap:
            await _refusal(413, "too_large", f"the body may be at most {cap} bytes")(
                scope, receive, send
            )
            return
        await self._capped(scope, receive, send, cap)

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise TooLarge(cap)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()), *SECURITY]}
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except TooLarge:  # read outside a route, where no handler turned it into a 413
            if not started:
                await _refusal(413, "too_large", f"the body may be at most {cap} bytes")(
                    scope, receive, send
                )
