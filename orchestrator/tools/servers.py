"""Broken networks on 127.0.0.1, for the tests and the soak: a proxy that loses replies on
purpose (idempotency), and a TCP relay that can cut a connection to a database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from orchestrator.tools.harness import free_port

T = TypeVar("T")


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (all our peers send one)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


async def _cancel_the_rest() -> None:
    """Cancel every other task of this loop and wait until they end: a loop closed with
    a connection's handler still pending warns that the task was destroyed."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
        await _cancel_the_rest()

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class TcpRelay:
    """Relays TCP from a local port to `upstream` (host, port), until `cut()` drops every
    connection and stops listening; `restore()` listens again on the same port. A
    database outage, as the daemon sees it, without touching the database."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._listen())

    def __enter__(self) -> TcpRelay:
        self._thread.start()
        self.restore()
        return self

    async def _close(self) -> None:
        await self._cut()
        await _cancel_the_rest()

    def __exit__(self, *_exc: object) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
