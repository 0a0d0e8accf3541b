"""HTTP/1.1 on the standard library's sockets: JSON (or bytes) in, bytes out, connections
kept alive.

Agents run a thousand to a host, and an HTTP library is most of what a Python process
costs: `import httpx` alone adds 9.7 MiB to each agent's memory, and `http.client` 3.3 MiB
(its `email` parser). This client speaks only what the platform and the gateway use:
`http://` and `https://` (TLS loaded only then), or a Unix socket; `Content-Length` or
chunked bodies; keep-alive with a pool of idle connections, so one client serves many
threads. A connection the server closed while idle is noticed before it is reused, and a
request it drops without a byte of answer is sent once more on a fresh connection.

The gateway's relay uses it too, for the agents' calls it passes to the platform: a call
to a local server cost 0.2 ms of CPU with it and 0.75 ms with httpx, the server's included.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

_MAX_LINE = 65536
_MAX_HEADERS = 100
_BREAKS = frozenset("\r\n\0")


class HttpError(Exception):
    """No complete answer: the connection failed, timed out or spoke something else."""


class Reply(NamedTuple):
    """An answer: its status, its headers (lower-case names) and its body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.body)


class _Dropped(HttpError):
    """The server closed a reused connection before answering a byte."""


class Http:
    """Requests to one base URL (`scheme://host[:port][/prefix]`); `unix_socket` connects
    there instead of to the host, as a confined agent reaches its gateway."""

    def __init__(
        self,
        base_url: str,
        *,
        unix_socket: str | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._tls else 80)
        self._authority = url.netloc.rpartition("@")[2]
        self._prefix = url.path.rstrip("/")
        self._unix_socket = unix_socket
        self._timeout = timeout
        self._headers = dict(headers or {})
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        content: bytes | None = None,
    ) -> Reply:
        """Send `body` (JSON unless None), or `content` as it is, to `path` under the base
        URL; HttpError if no whole answer came back."""
        payload = content or b""
        merged = {**self._headers, **(headers or {})}
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            merged["Content-Type"] = "application/json"
        if payload or method in ("POST", "PUT", "PATCH"):
            merged["Content-Length"] = str(len(payload))
        head = [f"{method} {self._prefix}{path} HTTP/1.1", f"Host: {self._authority}"]
        head += [f"{name}: {value}" for name, value in merged.items()]
        if any(_BREAKS.intersection(line) for line in head):  # one line would become two
            raise HttpError("a line break in the request's path or headers")
        message = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
        connection = self._take()
        try:
            reply = connection.exchange(message, method)
        except _Dropped:
            connection.close()
            connection = self._open()  # once: the server had closed it while idle
            reply = connection.exchange(message, method)
        except BaseException:
            connection.close()
            raise
        if connection.reusable:
            with self._lock:
                self._idle.append(connection)
        else:
            connection.close()
        return reply

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._open()
            if connection.alive():
                return connection
            connection.close()

    def _open(self) -> _Connection:
        try:
            if self._unix_socket is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self._timeout)
                sock.connect(self._unix_socket)
            else:
                sock = socket.create_connection((self._host, self._port), self._timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tls:
                    import ssl  # only when the platform is reached over TLS

                    context = ssl.create_default_context()
                    sock = context.wrap_socket(sock, server_hostname=self._host)
        except OSError as exc:
            raise HttpError(f"cannot connect: {type(exc).__name__}: {exc}") from None
        return _Connection(sock)


class _Connection:
    """One socket and its buffered reader."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb")
        self.used = False
        self.reusable = False

    def alive(self) -> bool:
        """False if the server closed it (an idle connection with something to read has
        either been closed or sent what nobody asked for)."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def exchange(self, message: bytes, method: str) -> Reply:
        reused, self.used = self.used, True
        try:
            self._sock.sendall(message)
            status_line = self._reader.readline(_MAX_LINE)
            if not status_line:
                if reused:
                    raise _Dropped("the server closed the connection")
                raise HttpError("the server closed the connection without an answer")
            return self._read(status_line, method)
        except ValueError as exc:
            raise HttpError(f"a malformed answer: {exc}") from None
        except OSError as exc:
            if reused and isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                raise _Dropped(str(exc)) from None
            raise HttpError(f"{type(exc).__name__}: {exc}") from None

    def _read(self, status_line: bytes, method: str) -> Reply:
        version, _, rest = status_line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpError(f"not an HTTP answer: {status_line[:40]!r}")
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._reader.readline(_MAX_LINE).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise HttpError("too many headers")
        status = int(code)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            body = self._reader.read()
            headers["connection"] = "close"
        self.reusable = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        return Reply(status, reason, headers, body)

    def _exactly(self, size: int) -> bytes:
        if size < 0:
            raise HttpError(f"a negative length {size}")
        data = self._reader.read(size)
        if len(data) != size:
            raise HttpError(f"the answer ended after {len(data)} of {size} bytes")
        return data

    def _chunked(self) -> bytes:
        parts = []
        while True:
            line = self._reader.readline(_MAX_LINE).split(b";")[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise HttpError(f"bad chunk size {line[:20]!r}") from None
            if size == 0:
                while self._reader.readline(_MAX_LINE).strip():
                    pass  # trailers
                return b"".join(parts)
            parts.append(self._exactly(size))
            self._exactly(2)  # CRLF

    def close(self) -> None:
        self._reader.close()
        self._sock.close()
