"""A stand-in for the vendor APIs we cannot reach (news, quotes, the LLM, a webhook):
an ASGI app that answers each path with scripted responses, usually recorded real payloads
from `tests/payloads`, and counts what it saw. Serve it with `harness.serve`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

PAYLOADS = Path(__file__).resolve().parents[2] / "tests" / "payloads"


def payload(name: str) -> dict:
    """A recorded vendor response body from tests/payloads."""
    return json.loads((PAYLOADS / name).read_text())


@dataclass
class Seen:
    """One request the app answered."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ScriptedApp:
    """An ASGI app answering each path with scripted responses, counting what it saw.

    `on(path, *answers)` scripts (status, body, headers) answers used in turn, the last
    one repeating. `delay` holds every answer back, so concurrent requests overlap.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.script: dict[str, list[tuple[int, object, dict]]] = {}
        self.delay = delay
        self.seen: list[Seen] = []
        self.app = Starlette(
            routes=[Route("/{path:path}", self._answer, methods=["GET", "POST", "DELETE"])]
        )

    def on(self, path: str, *answers: tuple[int, object, dict]) -> ScriptedApp:
        self.script[path] = list(answers)
        return self

    def hits(self, path: str) -> int:
        return sum(s.path == path for s in self.seen)

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        self.seen.append(
            Seen(path, dict(request.query_params), dict(request.headers), await request.body())
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        answers = self.script.get(path)
        if not answers:
            return JSONResponse({"error": {"code": "not_scripted", "message": path}}, 404)
        status, body, headers = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(body, str):
            return PlainTextResponse(body, status, headers=headers)
        return JSONResponse(body, status, headers=headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
