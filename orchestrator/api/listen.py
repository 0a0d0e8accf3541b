"""The sockets a server listens on, opened before it starts: a port that is taken, or a
socket path that cannot be, is one line naming what to change, not a server's traceback
after it has already said where it serves."""

from __future__ import annotations

import socket
from pathlib import Path

MAX_SOCKET_PATH = 100  # bytes; the kernel's limit is 107


class CannotListen(Exception):
    """A server cannot open its port or socket; the message says why and what to set."""


def on_port(host: str, port: int, change: str) -> socket.socket:
    """Listen on `host:port`, or say in one line why not and what to `change`."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        reason = (exc.strerror or str(exc)).lower()
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}; {change}") from None
    return listener


def on_gateway_socket(path: Path) -> socket.socket:
    """Listen on the gateway socket, replacing a stale one (the lease says it is ours).
    Any local user may connect, as to the port: every request needs an agent's token.
    The directory stays: running agents' containers have it mounted."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(str(path).encode()) > MAX_SOCKET_PATH:
            raise OSError(f"the path is longer than {MAX_SOCKET_PATH} bytes")
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        listener.bind(str(path))
        path.chmod(0o666)
    except OSError as exc:
        listener.close()
        raise CannotListen(
            f"cannot listen on the gateway socket {path}: {exc.strerror or exc}; "
            "set FLEET_GATEWAY_DIR to a short directory of its own"
        ) from None
    return listener
