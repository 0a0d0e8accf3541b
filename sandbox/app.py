"""The sandbox platform's HTTP API (DESIGN §4.4), as a FastAPI app.

Status codes and the `{"error": {"code", "message"}}` body are the contract the real
platform must also honour; `platform_client` is tested against this app. No handler may
answer 5xx to a malformed request, and none may change state before its input is valid.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from feeds.clock import MarketClock
from feeds.events import EVENT_RATE_PER_DAY
from feeds.market import SimulatedMarket
from sandbox.auth import RateLimiter, TokenError, TokenSigner
from sandbox.ledger import Ledger, OrderRequest, SandboxError, order_view
from sandbox.social import BOARD_ROWS, Social
from sandbox.store import sandbox_engine


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox needs; built by `fleet sandbox` from the settings."""

    database_url: str
    controller_key: str
    secret: bytes
    market_seed: int = 42
    market_event_rate: float = EVENT_RATE_PER_DAY
    clock: MarketClock = field(default_factory=MarketClock)
    token_ttl_seconds: int = 3600
    rate_per_second: float = 50.0
    rate_burst: int = 100
    default_cash: float = 100_000.0
    leaderboard_seconds: float = 1.0  # how long one ranking serves every reader


class _Strict(BaseModel):
    """A request body as sent: no undeclared field, no value of another type converted (a
    qty of "3" or true is refused; a whole number is still a number), and no text holding
    a NUL character, which PostgreSQL cannot store (a `profile` is stored as JSON text, in
    which a NUL is an escape)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("no text may hold a NUL character (\\u0000)")
        return value


class CreateAgent(_Strict):
    idempotency_key: str = Field(min_length=1, max_length=128)
    display_name: str = Field(min_length=1, max_length=100)
    profile: dict[str, Any] = Field(default_factory=dict)
    starting_cash: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)


class Login(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SubmitOrder(_Strict):
    client_order_id: str = Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:-]+$")
    symbol: str = Field(min_length=1, max_length=10)
    side: Literal["buy", "sell"]
    qty: float | None = Field(default=None, gt=0, le=1e7, allow_inf_nan=False)
    notional: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)
    rationale: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_amount(self) -> SubmitOrder:
        if (self.qty is None) == (self.notional is None):
            raise ValueError("give exactly one of qty and notional")
        return self


class Follow(_Strict):
    user_id: str = Field(min_length=1, max_length=36)


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


class _Limited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


def _ledger(request: Request) -> Ledger:
    return request.app.state.ledger


def _social(request: Request) -> Social:
    return request.app.state.social


def _limit(request: Request, caller: str) -> None:
    wait = request.app.state.limiter.acquire(caller)
    if wait:
        raise _Limited(wait)


def controller(request: Request) -> None:
    """Require the controller key (and count the call against its rate limit)."""
    key = request.headers.get("x-controller-key", "")
    expected = request.app.state.config.controller_key
    if not key or not hmac.compare_digest(key.encode(), expected.encode()):
        raise SandboxError(401, "invalid_controller_key", "missing or wrong X-Controller-Key")
    _limit(request, "controller")


def agent(request: Request) -> str:
    """The user id of the bearer token's active account."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise SandboxError(401, "missing_token", "send Authorization: Bearer <access token>")
    try:
        user_id = request.app.state.signer.verify(token.strip())
    except TokenError as exc:
        raise SandboxError(401, exc.code, str(exc)) from None
    _limit(request, f"token:{token}")
    _ledger(request).active_account(user_id)
    return user_id


UserId = Annotated[str, Depends(agent)]
# An account id in a path, as the platform makes them (the relay passes no other).
AccountId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]

controller_api = APIRouter(
    prefix="/api/controller", tags=["controller"], dependencies=[Depends(controller)]
)
api = APIRouter(prefix="/api", tags=["agents"])


@controller_api.post("/create-agent", status_code=201)
def create_agent(request: Request, response: Response, body: CreateAgent) -> dict:
    """Create an agent account; the same key and body replays the first answer (200)."""
    credentials, created = _ledger(request).create_account(
        body.idempotency_key, body.display_name, body.profile, body.starting_cash
    )
    if not created:
        response.status_code = 200
    return credentials


@controller_api.post("/agents/{user_id}/retire")
def retire_agent(request: Request, user_id: AccountId) -> dict:
    """Disable an agent's account (idempotent)."""
    return _ledger(request).retire_account(user_id)


@controller_api.get("/agents")
def controller_agents(request: Request) -> list[dict]:
    """Every account the controller created."""
    return _ledger(request).accounts()


@api.post("/auth/login")
def login(request: Request, body: Login) -> dict:
    """Exchange credentials for an access token."""
    account = _ledger(request).login(body.username, body.password)
    signer: TokenSigner = request.app.state.signer
    return {
        "access_token": signer.issue(account.user_id),
        "token_type": "bearer",
        "expires_in": signer.ttl_seconds,
    }


@api.post("/trading/submit", status_code=201)
def submit(request: Request, response: Response, user_id: UserId, body: SubmitOrder) -> dict:
    """Fill at the current price; a repeated client_order_id replays the order (200)."""
    req = OrderRequest(
        body.client_order_id, body.symbol, body.side, body.qty, body.notional, body.rationale
    )
    order, created = _ledger(request).submit(user_id, req)
    if not created:
        response.status_code = 200
    return order_view(order)


@api.get("/trading/orders")
def orders(
    request: Request, user_id: UserId, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict]:
    """The account's orders, newest first."""
    return _ledger(request).orders(user_id, limit)


@api.get("/trading/portfolio")
def portfolio(request: Request, user_id: UserId) -> dict:
    """Cash, positions marked to market, equity."""
    return _ledger(request).portfolio(user_id)


@api.post("/subscriptions", status_code=201)
def follow(request: Request, response: Response, user_id: UserId, body: Follow) -> dict:
    """Follow another agent (200 if already following)."""
    if not _social(request).follow(user_id, body.user_id):
        response.status_code = 200
    return {"follower_id": user_id, "followee_id": body.user_id}


@api.delete("/subscriptions/{followee_id}")
def unfollow(request: Request, user_id: UserId, followee_id: AccountId) -> dict:
    """Stop following (fine if not following)."""
    _social(request).unfollow(user_id, followee_id)
    return {"follower_id": user_id, "followee_id": followee_id}


@api.get("/subscriptions")
def subscriptions(request: Request, user_id: UserId) -> dict:
    """Who the agent follows and who follows it."""
    return _social(request).subscriptions(user_id)


@api.get("/social/leaderboard")
def leaderboard(
    request: Request,
    user_id: UserId,
    limit: Annotated[int, Query(ge=1, le=BOARD_ROWS)] = 100,
    following: bool = False,
) -> dict:
    """Active accounts by return, with their followers and the symbols they hold; only
    those the caller follows with `following=true`."""
    return _social(request).leaderboard(user_id, limit, following)


@api.get("/social/feed")
def feed(
    request: Request,
    user_id: UserId,
    since: AwareDatetime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict:
    """Recent fills of the accounts this agent follows, newest first."""
    return _social(request).feed(user_id, since.astimezone(UTC), limit)


def create_sandbox_app(config: SandboxConfig) -> FastAPI:
    """The sandbox platform app over its own database."""
    app = FastAPI(title="agent-fleet sandbox platform", version="1")
    engine = sandbox_engine(config.database_url)
    app.state.config = config
    app.state.ledger = Ledger(
        engine,
        SimulatedMarket(config.market_seed, config.market_event_rate),
        config.secret,
        config.clock.now,
        config.default_cash,
    )
    app.state.social = Social(
        engine, app.state.ledger.market, config.clock.now, config.leaderboard_seconds
    )
    app.state.signer = TokenSigner(config.secret, config.token_ttl_seconds)
    app.state.limiter = RateLimiter(config.rate_per_second, config.rate_burst)
    app.include_router(controller_api)
    app.include_router(api)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.exception_handler(SandboxError)
    async def _sandbox_error(_request: Request, exc: SandboxError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(_Limited)
    async def _limited(_request: Request, exc: _Limited) -> JSONResponse:
        return _error(
            429,
            "rate_limited",
            f"too many requests; retry in {exc.retry_after}s",
            {"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", "; ".join(_describe(e) for e in exc.errors()[:3]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    async def _dispose() -> None:
        await run_in_threadpool(engine.dispose)

    app.router.on_shutdown.append(_dispose)
    return app
