"""The daemon's HTTP surface: the agents' gateway and the operators' API in one app.

Routers only: each is built by a `*_router(...)` function from the narrow services it
uses, and decides nothing (the gateway, the commands and the views do). Every error
leaves as `{"error": {"code", "message"}}` with a one-line message that names
the problem and never carries a secret or a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from orchestrator.api.errors import ApiError, TooLarge, error_response, store_unavailable
from orchestrator.api.guard import Gatekeeper
from orchestrator.api.lane import HeartbeatLane
from orchestrator.gateway.agents import AgentGateway
from orchestrator.gateway.rates import AgentRates
from orchestrator.state.errors import (
    Ambiguous,
    Conflict,
    DatabaseError,
    NotFound,
)
from orchestrator.untrusted import refusal
from personalities import PopulationError


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where or 'body'}: {refusal(error)}"


def create_app(
    routers: Sequence[APIRouter],
    authenticate_agent: Callable[[str], Any],
    rates: AgentRates,
    operator_token: str,
    lifespan: Any = None,
    remembered_agent: Callable[[str], Any] = lambda _token: None,
    heartbeats: AgentGateway | None = None,
) -> FastAPI:
    """The FastAPI app serving `routers` behind the `Gatekeeper` (agents are
    authenticated by `remembered_agent(token)` from memory, else by
    `authenticate_agent(token)`, and held to `rates`); `lifespan` runs the daemon's loops.
    With `heartbeats`, plain heartbeats take their own lane (`api.lane`) past the router."""
    app = FastAPI(title="agent-fleet orchestrator", version="1", lifespan=lifespan)
    for router in routers:
        app.include_router(router)
    if heartbeats is not None:  # added first: inside the Gatekeeper, added next
        app.add_middleware(HeartbeatLane, agents=heartbeats)
    app.add_middleware(
        Gatekeeper,
        authenticate_agent=authenticate_agent,
        rates=rates,
        operator_token=operator_token,
        remembered_agent=remembered_agent,
    )

    @app.exception_handler(DatabaseError)
    async def _store_down(_request: Request, exc: DatabaseError) -> JSONResponse:
        return store_unavailable(exc)

    @app.exception_handler(TooLarge)
    async def _too_large(_request: Request, exc: TooLarge) -> JSONResponse:
        return error_response(413, "too_large", str(exc.detail))

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(Ambiguous)
    async def _ambiguous(_request: Request, exc: Ambiguous) -> JSONResponse:
        return error_response(400, "ambiguous", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @app.exception_handler(PopulationError)
    async def _bad_population(_request: Request, exc: PopulationError) -> JSONResponse:
        return error_response(422, "invalid_population", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message = "; ".join(_describe(e) for e in exc.errors()[:3])
        return error_response(422, "invalid_request", message)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_request: Request, _exc: ClientDisconnect) -> Response:
        return Response(status_code=499)  # the client hung up mid-body: nobody reads this

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail))

    return app


__all__ = ["create_app", "error_response"]
