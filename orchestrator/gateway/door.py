"""The gateway's door on a Swarm: carries agents' connections from their overlay network to
the gateway's Unix socket, byte for byte.

It runs as one service on the daemon's own node (`fleet-<instance>-gateway`) with the
socket's directory mounted read-only, attached only to the agents' internal overlay, so it
listens nowhere else. It reads nothing it carries and holds no secret: every request still
needs the calling agent's own token. Stdlib only; it must never log what it carries.

    python -m orchestrator.gateway.door --port 8080 --socket /run/fleet/gateway.sock
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

log = logging.getLogger("fleet.door")
_CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (a half-close, not a hang-up)."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _carry(
    socket_path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Join one agent's connection to a new connection on the gateway socket."""
    try:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(socket_path)
    except OSError as exc:
        log.warning("gateway socket unavailable: %s", exc)
        writer.close()
        return
    try:
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
    finally:
        for end in (writer, upstream_writer):
            end.close()


async def serve(port: int, socket_path: str) -> None:
    """Carry connections on `port` (every address of the container) until SIGTERM."""
    server = await asyncio.start_server(
        lambda reader, writer: _carry(socket_path, reader, writer), port=port
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info("carrying port %s to %s", port, socket_path)
    async with server:
        await stopping.wait()


def main() -> None:
    """Entry point of `python -m orchestrator.gateway.door`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket", required=True)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(arguments.port, arguments.socket))


if __name__ == "__main__":
    main()
