"""Real servers on 127.0.0.1 for tests: any ASGI app under uvicorn, and a dropping proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app, port: int | None = None) -> Iterator[str]:
    """Run `app` under uvicorn in a thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (all our peers send one)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


class DroppingProxy:
    """Forwards HTTP to `upstream`, but drops chosen responses after the upstream answered.

    `drop(request_line)` decides per request: when it returns True, the request reaches
    the server (which commits it) and the client's connection is closed without the
    response — the lost-reply case idempotency must survive.
    """

    def __init__(self, upstream: str, drop: Callable[[str], bool]) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.drop = drop
        self.dropped: list[str] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_message(reader)
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                up_writer.write(request)
                await up_writer.drain()
                response = await _read_message(up_reader)
                up_writer.close()
                line = request.split(b"\r\n", 1)[0].decode()
                if self.drop(line):
                    self.dropped.append(line)
                    break
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        )
        self._server = started.result(timeout=10)
        return self

    async def _shutdown(self) -> None:
        self._server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


PAYLOADS = Path(__file__).with_name("payloads")


def payload(name: str) -> dict:
    """A recorded vendor response body from tests/payloads."""
    return json.loads((PAYLOADS / name).read_text())


@dataclass
class Seen:
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
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST"])])

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

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)
