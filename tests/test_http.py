"""The agents' HTTP client (`platform_client._http`) against real servers: uvicorn over TCP
and a Unix socket, and a raw socket server for what uvicorn would never send."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvicorn

from orchestrator.tools.harness import free_port, serve
from orchestrator.tools.scripted import ScriptedApp
from platform_client._http import Http, HttpError

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


@contextmanager
def raw_server(
    answer: Callable[[int, bytes], bytes | None], close_after: bool = False
) -> Iterator[tuple[str, list[int]]]:
    """A TCP server that reads one request per connection at a time and sends
    `answer(connection number, request)`; None closes the connection unanswered, and
    `close_after` closes it after every answer, without saying so."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def handle(conn: socket.socket, number: int) -> None:
        with conn:
            while request := conn.recv(65536):
                reply = answer(number, request)
                if reply is None:
                    return
                conn.sendall(reply)
                if close_after:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(len(accepted))
            threading.Thread(target=handle, args=(conn, accepted[-1]), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        listener.close()


def test_json_both_ways_on_one_kept_alive_connection_and_a_path_prefix():
    app = ScriptedApp().on("/v1/platform/api/x", (201, {"made": True}, {"X-Seen": "yes"}))
    with serve(app) as url:
        http = Http(f"{url}/v1/platform", headers={"Authorization": "Bearer a"})
        for n in range(3):
            reply = http.request("POST", "/api/x", body={"n": n}, headers={"X-N": str(n)})
            assert (reply.status, reply.json(), reply.headers["x-seen"]) == (
                201,
                {"made": True},
                "yes",
            )
        assert [seen.body for seen in app.seen] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        assert app.seen[2].headers["authorization"] == "Bearer a"
        assert app.seen[2].headers["x-n"] == "2"
        assert len(http._idle) == 1  # the three requests shared one connection
        http.close()


def test_a_unix_socket(tmp_path):
    path = str(tmp_path / "gateway.sock")
    app = ScriptedApp().on("/v1/agent/bootstrap", (200, {"agent": "a"}, {}))
    config = uvicorn.Config(app, uds=path, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        reply = Http("http://gateway", unix_socket=path).request("GET", "/v1/agent/bootstrap")
        assert reply.json() == {"agent": "a"}
        assert app.seen[0].headers["host"] == "gateway"
    finally:
        server.should_exit = True
        thread.join()


def test_chunked_bodies_and_a_connection_the_server_closed_while_idle():
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4\r\n{"a"\r\n3;x=y\r\n:1}\r\n0\r\nTrailer: t\r\n\r\n'
    )
    with raw_server(lambda number, _: chunked, close_after=True) as (url, accepted):
        http = Http(url)
        assert http.request("GET", "/").json() == {"a": 1}
        assert http.request("GET", "/").json() == {"a": 1}
        assert len(accepted) == 2


def test_a_dropped_reused_connection_is_retried_once_on_a_fresh_one():
    answered: list[int] = []

    def answer(number: int, request: bytes) -> bytes | None:
        if number == 0 and answered:
            return None  # the server drops its kept-alive connection at the next request
        answered.append(number)
        return OK

    with raw_server(answer) as (url, accepted):
        http = Http(url)
        http.request("GET", "/")
        assert http.request("GET", "/").status == 200
        assert answered == [0, 1] and len(accepted) == 2


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["not-http", "short-body", "bad-length", "bad-chunk"],
)
def test_a_broken_answer_is_an_http_error(reply):
    with (
        raw_server(lambda number, _: reply, close_after=True) as (url, _),
        pytest.raises(HttpError),
    ):
        Http(url, timeout=2).request("GET", "/")


def test_nothing_listening_and_a_silent_server_are_http_errors():
    silent = raw_server(lambda number, _: None)
    with silent as (url, _), pytest.raises(HttpError, match="closed the connection"):
        Http(url).request("GET", "/")
    with pytest.raises(HttpError, match="cannot connect"):
        Http(f"http://127.0.0.1:{free_port()}").request("GET", "/")
    with pytest.raises(ValueError, match="not an http"):
        Http("ftp://example.com")


def test_a_line_break_in_a_path_or_header_is_refused_before_anything_is_sent():
    """The gateway's relay passes an agent's values on: none may add a header or a request."""
    with raw_server(lambda number, _: OK) as (url, accepted):
        http = Http(url)
        with pytest.raises(HttpError, match="line break"):
            http.request("GET", "/", headers={"Authorization": "Bearer a\r\nX-Admin: 1"})
        with pytest.raises(HttpError, match="line break"):
            http.request("GET", "/?a=1 HTTP/1.1\r\nHost: elsewhere\r\n\r\nGET /")
        assert accepted == []  # not even connected
        assert http.request("GET", "/").status == 200
