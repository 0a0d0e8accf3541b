"""What one heartbeat costs the daemon's CPU, in process, and how much of that is memory.

The app is the one the daemon serves agents with (`orchestrator.api.create_app`: the
`Gatekeeper`, then the heartbeat lane), over a real store on SQLite with `agents` agents,
each beating with its own token. Every beat is a plain one, answered by the lane from
memory, as in a fleet. uvicorn's parsing and the socket are not counted.

Each beat's CPU is read with `time.thread_time`, in alternate rounds:
- **warm**: beat after beat, every cache holding what the last beat touched;
- **cold**: `EVICT_BYTES` written before each beat, twice what this machine's last-level
  cache holds (32 MiB), as a thousand agents and their engine do between two beats in a
  real fleet.

At 1,000 idle agents (`bench scale`) a fleet sends the daemon 100 beats a second.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.figures import Figure
from orchestrator import keys
from orchestrator.api import create_app
from orchestrator.daemon import utc_now
from orchestrator.gateway.agents import AgentGateway
from orchestrator.gateway.rates import AgentRates
from orchestrator.lifecycle import Phase
from orchestrator.settings import Settings
from orchestrator.state.db import open_store
from orchestrator.state.health import StoreHealth
from orchestrator.state.store import Store

EVICT_BYTES = 64 * 1024 * 1024
HEARTBEAT = "/v1/agent/heartbeat"


async def _beat(app: Any, token: str, cycle: int) -> None:
    """One plain heartbeat through `app`; RuntimeError unless it is answered 200."""
    body = json.dumps({"cycle": cycle}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": HEARTBEAT,
        "raw_path": HEARTBEAT.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": None,
        "server": None,
    }
    received = False
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal received
        if received:  # the lane reads the body once; nothing more will come
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"a plain heartbeat was answered {sent[0]['status']}, not 200")


async def _rounds(app: Any, tokens: list[str], rounds: int) -> dict[str, list]:
    """Seconds of CPU per beat, warm and cold in alternate rounds."""
    for token in tokens:  # first beats, not counted: they read the store (who, what phase)
        await _beat(app, token, 0)
    evict = np.zeros(EVICT_BYTES, dtype=np.uint8)
    spent: dict[str, list] = {"warm": [], "cold": []}
    for cycle in range(1, rounds + 1):
        cold = cycle % 2 == 0
        for token in tokens:
            if cold:
                evict += 1
            start = time.thread_time()
            await _beat(app, token, cycle)
            spent["cold" if cold else "warm"].append(time.thread_time() - start)
    return spent


def _measure(store: Store, state_dir: Path, agents: int, rounds: int) -> tuple[dict, int]:
    """The seconds each beat took, warm and cold, and how many agents' beats the store
    holds afterwards."""
    settings = Settings(state_dir=state_dir)
    tokens: dict[str, str] = {}

    def token_hash_for(agent_id: str) -> str:
        tokens[agent_id] = secrets.token_urlsafe(32)
        return keys.token_hash(tokens[agent_id])

    now = utc_now()
    made, _ = store.spawn(
        "bench-beats",
        [{"name": f"beat-{i}", "strategy": "momentum"} for i in range(agents)],
        token_hash_for,
        now,
    )
    for agent in made:
        store.transition(
            agent.id, "container_started", "c", now, phase=Phase.STARTING, container_id="c"
        )
    gateway = AgentGateway(store, None, StoreHealth(utc_now), settings, utc_now)
    app = create_app(
        [],
        authenticate_agent=gateway.authenticate,
        # a bench beats faster than any agent may: a burst that holds every round
        rates=AgentRates(settings.agent_cycle_seconds, burst=rounds + 1),
        operator_token=secrets.token_urlsafe(32),
        remembered_agent=gateway.remembered,
        heartbeats=gateway,
    )
    spent = asyncio.run(_rounds(app, [tokens[a.id] for a in made], rounds))
    gateway.flush()
    return spent, sum(1 for a in store.agents() if a.last_heartbeat_at is not None)


def heartbeats(agents: int = 100, rounds: int = 10) -> list[Figure]:
    """CPU per plain heartbeat through the daemon's app, warm and with caches evicted."""
    if rounds < 2:
        raise ValueError("rounds: at least 2, a warm one and a cold one")
    with tempfile.TemporaryDirectory(prefix="fleet-beats-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'fleet.db'}")
        try:
            spent, beaten = _measure(store, Path(tmp), agents, rounds)
        finally:
            store.engine.dispose()
    if beaten != agents:
        raise RuntimeError(f"{beaten} of {agents} agents' beats reached the store")
    warm, cold = (1e6 * float(np.mean(spent[k])) for k in ("warm", "cold"))
    scale = f"{agents} agents, {len(spent['warm'])} beats each way, in process, no HTTP server"
    return [
        Figure(
            "heartbeat through the daemon's app, warm caches", warm, "µs of CPU", "", None, scale
        ),
        Figure(
            "heartbeat through the daemon's app, caches evicted",
            cold,
            "µs of CPU",
            "",
            None,
            f"{cold / warm:.1f}× warm; {EVICT_BYTES >> 20} MiB written before each beat",
        ),
    ]
