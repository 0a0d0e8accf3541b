"""The web dashboard at `GET /`: server-rendered pages, no front-end build step.

Login takes the operator token and leaves a session cookie (HttpOnly, SameSite=Strict)
that holds a hash of the token, never the token. Pages are read-only; pause, resume and
retire are offered only with `FLEET_DASHBOARD_ACTIONS=true`, each behind a confirmation
page whose form carries a CSRF token. Live parts reload themselves from `/fragments/…`
every few seconds. Bad references get an HTML error page, never a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from orchestrator import keys
from orchestrator.api.errors import fleet_of
from orchestrator.store import Ambiguous, NotFound, StoreError
from orchestrator.summaries import market_line
from orchestrator.views import agent_view, event_view, fleet_view, iso, problems_first

COOKIE = "fleet_session"
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals["market_line"] = market_line
router = APIRouter(include_in_schema=False)


def _session(token: str) -> str:
    return hashlib.sha256(f"dashboard-session:{token}".encode()).hexdigest()


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"dashboard-csrf", hashlib.sha256).hexdigest()


def _signed_in(request: Request) -> bool:
    cookie = request.cookies.get(COOKIE, "")
    return keys.tokens_equal(cookie, _session(fleet_of(request).operator_token))


def _page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
    fleet = fleet_of(request)
    context.setdefault("summary", fleet_view(fleet))
    return templates.TemplateResponse(
        request,
        name,
        {
            "actions": fleet.settings.dashboard_actions,
            "csrf": _csrf(fleet.operator_token),
            **context,
        },
        status_code=status,
    )


def _error(request: Request, status: int, message: str) -> HTMLResponse:
    return _page(request, "error.html", status, message=message)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    """The login form."""
    return templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": ""})


@router.post("/login")
def login(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    """Exchange the operator token for a session cookie."""
    fleet = fleet_of(request)
    if not keys.tokens_equal(token.strip(), fleet.operator_token):
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": _local(next), "error": "wrong operator token"},
            status_code=401,
        )
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        COOKIE, _session(fleet.operator_token), httponly=True, samesite="strict", path="/"
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the session."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """Only a path on this site is a place to go after login."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    """The fleet at a glance: summary, agents (problems first), latest events."""
    if not _signed_in(request):
        return _login_redirect(request)
    return _page(request, "overview.html", **_overview(request))


@router.get("/fragments/overview", response_class=HTMLResponse)
def overview_fragment(request: Request) -> Response:
    """The live part of the overview, for its periodic reload."""
    if not _signed_in(request):
        return Response(status_code=401)
    return _page(request, "_overview.html", **_overview(request))


def _overview(request: Request) -> dict:
    fleet = fleet_of(request)
    now = fleet.now()
    return {
        "agents": problems_first([agent_view(a, now) for a in fleet.store.agents()]),
        "events": [event_view(e, name) for e, name in fleet.store.recent_events(15)],
    }


@router.get("/agents/{ref}", response_class=HTMLResponse)
def agent_page(request: Request, ref: str) -> Response:
    """One agent: facts, equity chart and timeline."""
    if not _signed_in(request):
        return _login_redirect(request)
    fleet = fleet_of(request)
    try:
        agent = fleet.store.resolve(ref)
    except (NotFound, Ambiguous) as exc:
        return _error(request, 404 if isinstance(exc, NotFound) else 400, str(exc))
    history = fleet.store.equity_history(agent.id)
    return _page(
        request,
        "agent.html",
        agent=agent_view(agent, fleet.now()),
        events=[event_view(e) for e in reversed(fleet.store.events(agent.id, limit=100))],
        chart=equity_chart(history),
    )


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request) -> Response:
    """Recent alerts and their delivery."""
    if not _signed_in(request):
        return _login_redirect(request)
    alerts = [
        {"at": iso(a.at), "kind": a.kind, "text": a.text, "delivery": a.delivery}
        for a in fleet_of(request).store.alerts(100)
    ]
    return _page(request, "alerts.html", alerts=alerts)


# -- actions: a confirmation page (GET), then the form's POST ---------------------


@router.get("/confirm/{action}", response_class=HTMLResponse)
def confirm(request: Request, action: str, agent: str | None = None) -> Response:
    """Ask before pausing, resuming or retiring."""
    if not _signed_in(request):
        return _login_redirect(request)
    if not fleet_of(request).settings.dashboard_actions:
        return _error(request, 403, _READ_ONLY)
    if action not in ("pause", "resume", "retire"):
        return _error(request, 404, f"no action {action!r}")
    target = None
    if action == "retire":
        try:
            target = fleet_of(request).store.resolve(agent or "")
        except StoreError as exc:
            return _error(request, 404, str(exc))
    return _page(request, "confirm.html", action=action, target=target)


_READ_ONLY = "the dashboard is read-only: FLEET_DASHBOARD_ACTIONS=true enables its actions"


@router.post("/actions/{action}")
async def act(
    request: Request,
    action: str,
    csrf: Annotated[str, Form()] = "",
    agent: Annotated[str, Form()] = "",
) -> Response:
    """Carry out a confirmed action."""
    if not _signed_in(request):
        return _login_redirect(request)
    fleet = fleet_of(request)
    if not fleet.settings.dashboard_actions:
        return _error(request, 403, _READ_ONLY)
    if not keys.tokens_equal(csrf, _csrf(fleet.operator_token)):
        return _error(request, 403, "the form has expired; go back and try again")
    now = fleet.now()
    if action in ("pause", "resume"):
        await run_in_threadpool(fleet.store.set_paused, action == "pause", now)
        return RedirectResponse("/", status_code=303)
    if action == "retire":
        try:
            target = await run_in_threadpool(fleet.store.resolve, agent)
        except StoreError as exc:
            return _error(request, 404, str(exc))
        await run_in_threadpool(
            fleet.store.request_retire, target.id, now, None, "from the dashboard"
        )
        fleet.reconciler.wake()
        return RedirectResponse(f"/agents/{target.id}", status_code=303)
    return _error(request, 404, f"no action {action!r}")


def equity_chart(
    history: list[tuple[datetime, float]], width: int = 640, height: int = 160
) -> dict:
    """An inline SVG polyline of an agent's equity: points, axis labels, colour."""
    if len(history) < 2:
        return {"points": "", "width": width, "height": height}
    start, end = history[0][0], history[-1][0]
    low = min(v for _, v in history)
    high = max(v for _, v in history)
    span = (end - start).total_seconds() or 1.0
    rise = (high - low) or 1.0
    points = " ".join(
        f"{(at - start).total_seconds() / span * width:.1f},"
        f"{height - (value - low) / rise * height:.1f}"
        for at, value in history
    )
    return {
        "points": points,
        "width": width,
        "height": height,
        "low": low,
        "high": high,
        "start": iso(start),
        "end": iso(end),
        "up": history[-1][1] >= history[0][1],
    }
