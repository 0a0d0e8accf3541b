"""The daemon's HTTP surface: the agents' gateway and the operators' API in one app.

Every error leaves as `{"error": {"code", "message"}}` with a one-line message that names
the problem and never carries a secret or a traceback.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.api.errors import ApiError
from orchestrator.api.feeds import router as feeds_router
from orchestrator.api.gateway import router as gateway_router
from orchestrator.api.llm import router as llm_router
from orchestrator.api.operator import router as operator_router
from orchestrator.api.schedules import router as schedules_router
from orchestrator.api.web import router as web_router
from orchestrator.store import Ambiguous, Conflict, NotFound
from personalities import PopulationError


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one error body every endpoint uses."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


def create_app(lifespan: Any = None) -> FastAPI:
    """The FastAPI app; `lifespan` attaches the running fleet to `app.state.fleet`."""
    app = FastAPI(title="agent-fleet orchestrator", version="1", lifespan=lifespan)
    app.include_router(gateway_router)
    app.include_router(feeds_router)
    app.include_router(llm_router)
    app.include_router(operator_router)
    app.include_router(schedules_router)
    app.include_router(web_router)

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

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail))

    return app


__all__ = ["create_app", "error_response"]
