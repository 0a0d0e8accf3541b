"""The heartbeat's own lane through the app: every agent calls it every cycle, and most
of a heartbeat's cost was the framework around it.

Profiled at 300 idle agents, the routing, dependencies, validation and serialisation
around the routes took about a third of the daemon's busy time, most of it for
heartbeats, whose own work is a check and a note in memory. This middleware sits just
inside the `Gatekeeper` (so the agent is already authenticated, held to its rate and its
body capped) and answers the plain case itself: a POST of a valid beat. The kill switch
comes from memory, or from the store in a worker thread once its reading is a second old
(a store that cannot be read is a 503, as on the route). Anything else goes on to the
route, the body handed over as it was read, and is answered as it always is: a body that
does not validate (422), or a cycle that went back (409).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from orchestrator.api.errors import store_unavailable
from orchestrator.api.guard import Message, Receive, Scope, Send
from orchestrator.gateway.agents import AgentGateway, Heartbeat, HeartbeatReply
from orchestrator.state.errors import Conflict, DatabaseError
from orchestrator.state.tables import Agent

HEARTBEAT = "/v1/agent/heartbeat"


class HeartbeatLane:
    """ASGI middleware: answer a plain heartbeat without the router."""

    def __init__(self, app: Any, agents: AgentGateway) -> None:
        self.app = app
        self.agents = agents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        agent = scope.get("state", {}).get("agent") if scope["type"] == "http" else None
        if agent is None or scope["path"] != HEARTBEAT or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages = await _body(receive)
        if messages[-1]["type"] != "http.request":
            return  # the agent hung up before its body was in: no one to answer
        try:
            beat = Heartbeat.model_validate_json(b"".join(m.get("body", b"") for m in messages))
            reply = await answer(self.agents, agent, beat)
        except (ValidationError, Conflict):
            await self.app(scope, _replay(messages, receive), send)
            return
        except DatabaseError as exc:
            await store_unavailable(exc)(scope, receive, send)
            return
        body = reply.model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def answer(agents: AgentGateway, agent: Agent, beat: Heartbeat) -> HeartbeatReply:
    """Take `beat` and answer it, for the lane and the route alike: on the event loop
    while the kill switch is in memory, else in a worker thread that reads it from the
    store (at most about once a second)."""
    if (paused := agents.paused_known()) is not None:
        return agents.heartbeat(agent, beat, paused)
    return await run_in_threadpool(agents.heartbeat, agent, beat)


async def _body(receive: Receive) -> list[Message]:
    """The request's body messages up to the last (or a disconnect)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that gives the messages already read first."""
    waiting = list(messages)

    async def replayed() -> Message:
        return waiting.pop(0) if waiting else await receive()

    return replayed
