"""The web dashboard at `GET /`: server-rendered pages, no front-end build step.

Login takes the operator token and leaves a session cookie (HttpOnly, SameSite=Strict)
that holds a signed issue time, never the token; a session expires, ends at logout, and
ends for everyone when the daemon restarts. Failed logins are throttled per client. Pages
are read-only; pause, resume and retire are offered only with
`FLEET_DASHBOARD_ACTIONS=true`, each behind a confirmation page whose form carries a CSRF
token. Live parts reload themselves from `/fragments/…`
every few seconds. Bad references get an HTML error page, never a traceback.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# which name objects local to the router's factory.

import hashlib
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from orchestrator import keys
from orchestrator.api.charts import follow_graph, line_chart
from orchestrator.lifecycle import NOT_RETIRED, Phase
from orchestrator.operations.commands import Commands
from orchestrator.operations.summaries import market_line, problems_first
from orchestrator.operations.views import (
    FleetSummary,
    agent_detail,
    agent_view,
    alert_view,
    event_view,
)
from orchestrator.operations.why import graph
from orchestrator.state.equity import EquityBook
from orchestrator.state.errors import Ambiguous, NotFound, StoreError
from orchestrator.state.store import Store

COOKIE = "fleet_session"
LOGIN_ATTEMPTS = 5  # failed logins per client address …
LOGIN_WINDOW = 60.0  # … within this many seconds; then it waits
OVERVIEW_ROWS = 100  # agents the overview draws, those that most need attention first
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals["market_line"] = market_line
_READ_ONLY = "the dashboard is read-only: FLEET_DASHBOARD_ACTIONS=true enables its actions"


class Sessions:
    """Dashboard sessions: a cookie `<issued>.<nonce>.<signature>` signed with the operator token
    and this daemon's start (a restart ends every session), valid for `ttl` seconds and
    until logout. Failed logins are throttled per client address."""

    def __init__(self, operator_token: str, ttl: float, clock: Callable[[], float]) -> None:
        self._key = hmac.new(
            operator_token.encode(), secrets.token_bytes(16), hashlib.sha256
        ).digest()
        self.ttl = ttl
        self.clock = clock
        self._ended: dict[str, float] = {}  # logged-out cookie -> when it would expire
        self._failures: dict[str, list[float]] = {}

    def _sign(self, session: str) -> str:
        return hmac.new(self._key, session.encode(), hashlib.sha256).hexdigest()

    def open(self) -> str:
        """A new session's cookie."""
        session = f"{self.clock():.0f}.{secrets.token_hex(8)}"
        return f"{session}.{self._sign(session)}"

    def valid(self, cookie: str) -> bool:
        """Whether the cookie is a live session of this daemon."""
        session, _, signature = cookie.rpartition(".")
        issued = session.partition(".")[0]
        if not issued.isdigit() or not keys.tokens_equal(signature, self._sign(session)):
            return False
        return self.clock() - int(issued) <= self.ttl and cookie not in self._ended

    def close(self, cookie: str) -> None:
        """End a session now (logout)."""
        now = self.clock()
        self._ended = {c: t for c, t in self._ended.items() if t > now}
        if self.valid(cookie):
            self._ended[cookie] = int(cookie.partition(".")[0]) + self.ttl

    def refused_for(self, client: str) -> float | None:
        """Seconds before `client` may try to log in again, or None."""
        recent = [t for t in self._failures.get(client, []) if self.clock() - t < LOGIN_WINDOW]
        self._failures[client] = recent
        if len(recent) < LOGIN_ATTEMPTS:
            return None
        return LOGIN_WINDOW - (self.clock() - recent[0])

    def failed(self, client: str) -> None:
        """Count a failed login of `client`."""
        self._failures.setdefault(client, []).append(self.clock())


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"dashboard-csrf", hashlib.sha256).hexdigest()


def _local(target: str) -> str:
    """Only a path on this site is a place to go after login."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def web_router(
    commands: Commands,
    summary: FleetSummary,
    store: Store,
    operator_token: str,
    sessions: Sessions,
    actions: bool,
) -> APIRouter:
    """The dashboard's pages; `actions` enables pause, resume and retire."""
    router = APIRouter(include_in_schema=False)
    csrf = _csrf(operator_token)

    def signed_in(request: Request) -> bool:
        return sessions.valid(request.cookies.get(COOKIE, ""))

    def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        context.setdefault("summary", summary.summary())
        return templates.TemplateResponse(
            request, name, {"actions": actions, "csrf": csrf, **context}, status_code=status
        )

    def error(request: Request, status: int, message: str) -> HTMLResponse:
        return page(request, "error.html", status, message=message)

    def overview_context(everyone: bool) -> dict:
        """The agents (the first OVERVIEW_ROWS, not retired, unless all are asked for)
        and the latest events."""
        now = summary.now()
        day, today = summary.orders_today()
        shown = store.agents(None if everyone else NOT_RETIRED)
        agents = problems_first([agent_view(a, now, (day, today[a.id])) for a in shown])
        curves = summary.curves()
        return {
            "market_day": day,
            "equity": line_chart("Fleet equity, last 24 h", {"fleet": curves.equity}),
            "pnl": line_chart("P&L by strategy, last 24 h", curves.pnl_by_strategy, signed=True),
            "curves": curves,
            "agents": agents if everyone else agents[:OVERVIEW_ROWS],
            "live_hidden": 0 if everyone else max(len(agents) - OVERVIEW_ROWS, 0),
            "retired_hidden": 0 if everyone else store.phase_counts().get(Phase.RETIRED, 0),
            "events": [event_view(e, name) for e, name in store.recent_events(15)],
        }

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        """The login form."""
        return templates.TemplateResponse(
            request, "login.html", {"next": _local(next), "error": ""}
        )

    @router.post("/login")
    def login(
        request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
    ) -> Response:
        """Exchange the operator token for a session cookie."""
        client = request.client.host if request.client else "unknown"
        wait = sessions.refused_for(client)
        if wait is not None:
            return templates.TemplateResponse(
                request,
                "login.html",
                {"next": _local(next), "error": f"too many failed logins; wait {wait:.0f}s"},
                status_code=429,
                headers={"Retry-After": f"{wait:.0f}"},
            )
        if not keys.tokens_equal(token.strip(), operator_token):
            sessions.failed(client)
            return templates.TemplateResponse(
                request,
                "login.html",
                {"next": _local(next), "error": "wrong operator token"},
                status_code=401,
            )
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(
            COOKIE,
            sessions.open(),
            max_age=int(sessions.ttl),
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    @router.post("/logout")
    def logout(request: Request) -> RedirectResponse:
        """End the session: its cookie is no good any more, even if kept."""
        sessions.close(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/", response_class=HTMLResponse)
    def overview(request: Request, all: bool = False) -> Response:
        """The fleet at a glance: summary, agents (problems first; retired ones with
        `?all=1`), latest events."""
        if not signed_in(request):
            return _login_redirect(request)
        return page(request, "overview.html", **overview_context(all))

    @router.get("/fragments/overview", response_class=HTMLResponse)
    def overview_fragment(request: Request, all: bool = False) -> Response:
        """The live part of the overview, for its periodic reload."""
        if not signed_in(request):
            return Response(status_code=401)
        return page(request, "_overview.html", **overview_context(all))

    @router.get("/agents/{ref}", response_class=HTMLResponse)
    def agent_page(request: Request, ref: str) -> Response:
        """One agent: facts, equity chart and timeline."""
        if not signed_in(request):
            return _login_redirect(request)
        try:
            agent = store.resolve(ref)
        except (NotFound, Ambiguous) as exc:
            return error(request, 404 if isinstance(exc, NotFound) else 400, str(exc))
        day, today = summary.orders_today()
        detail = agent_detail(store, summary.book, agent, summary.now(), (day, today[agent.id]))
        return page(
            request,
            "agent.html",
            agent=detail,
            market_day=day,
            events=[event_view(e) for e in reversed(store.events(agent.id, limit=100))],
            equity=line_chart("Equity", {"equity": EquityBook(store).history(agent.id)}),
        )

    @router.get("/social", response_class=HTMLResponse)
    def social_page(request: Request) -> Response:
        """Who follows whom, sized by followers, and the most followed agents."""
        if not signed_in(request):
            return _login_redirect(request)
        follows = graph(store)
        return page(
            request,
            "social.html",
            graph=follow_graph(follows),
            leaders=[n for n in follows["nodes"] if n["followers"]][:10],
            follows=len(follows["edges"]),
        )

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request) -> Response:
        """Recent alerts and their delivery."""
        if not signed_in(request):
            return _login_redirect(request)
        return page(request, "alerts.html", alerts=[alert_view(a) for a in store.alerts(100)])

    # -- actions: a confirmation page (GET), then the form's POST ---------------------

    @router.get("/confirm/{action}", response_class=HTMLResponse)
    def confirm(request: Request, action: str, agent: str | None = None) -> Response:
        """Ask before pausing, resuming or retiring."""
        if not signed_in(request):
            return _login_redirect(request)
        if not actions:
            return error(request, 403, _READ_ONLY)
        if action not in ("pause", "resume", "retire"):
            return error(request, 404, f"no action {action!r}")
        target = None
        if action == "retire":
            try:
                target = store.resolve(agent or "")
            except StoreError as exc:
                return error(request, 404, str(exc))
        return page(request, "confirm.html", action=action, target=target)

    @router.post("/actions/{action}")
    async def act(
        request: Request,
        action: str,
        form_csrf: Annotated[str, Form(alias="csrf")] = "",
        agent: Annotated[str, Form()] = "",
    ) -> Response:
        """Carry out a confirmed action."""
        if not signed_in(request):
            return _login_redirect(request)
        if not actions:
            return error(request, 403, _READ_ONLY)
        if not keys.tokens_equal(form_csrf, csrf):
            return error(request, 403, "the form has expired; go back and try again")
        if action in ("pause", "resume"):
            await run_in_threadpool(commands.pause, action == "pause")
            return RedirectResponse("/", status_code=303)
        if action == "retire":
            try:
                target = await run_in_threadpool(
                    commands.retire, agent, False, "from the dashboard"
                )
            except StoreError as exc:
                return error(request, 404, str(exc))
            return RedirectResponse(f"/agents/{target.id}", status_code=303)
        return error(request, 404, f"no action {action!r}")

    return router
