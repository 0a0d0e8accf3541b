"""The fault-injection suite's parts: agent images that misbehave, a news wire that keeps
agents trading, a webhook receiver, and the invariants every scenario ends with."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import time
from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from feeds.providers.newsapi import company
from orchestrator.settings import Settings
from orchestrator.tools.harness import Daemon, serve
from orchestrator.tools.invariants import containers, violations
from orchestrator.tools.scripted import ScriptedApp
from tests.conftest import CONTROLLER_KEY

pytestmark = pytest.mark.docker

# Fast supervision for tests: half-second cycles, short timeouts, a short healthy stretch.
FAST = {
    # Long enough for a fresh agent's first heartbeat on a loaded 2-core CI machine (a
    # slow start on a rolled-out image counts against the rollout), short for the tests.
    "FLEET_HEARTBEAT_TIMEOUT_SECONDS": "15",
    "FLEET_RESTART_RESET_SECONDS": "4",
    "FLEET_CRASHLOOP_THRESHOLD": "4",
}
LIVE = ("pending", "provisioning", "starting", "running", "unhealthy", "backoff", "crashloop")
# Large technology companies: what the traders below watch and the wire reports on.
WATCHED = ["AAPL", "MSFT", "NVDA", "GOOGL"]
TRADERS = {
    "strategies": {"event_driven": 1.0},
    "frequencies": {"scalping": 1.0},
    "sectors": {"technology": 1.0},
    "market_caps": {"large": 1.0},
    "sectors_per_agent": [1, 1],
}


def events(daemon: Daemon, agent_id: str) -> list[dict]:
    response = daemon.api("GET", f"/v1/agents/{agent_id}/events")
    assert response.status_code == 200, response.text
    return response.json()


def healthy(n: int):
    """All n live agents running with a fresh heartbeat."""

    def check(agents: list[dict]) -> bool:
        live = [a for a in agents if a["phase"] in LIVE]
        return len(live) == n and all(
            a["phase"] == "running" and (a["heartbeat_age_seconds"] or 99) < 3 for a in live
        )

    return check


def assert_converged(
    daemon: Daemon, docker_client, instance: str, n: int, platform_url: str | None = None
) -> list[dict]:
    """Every desired agent running and heartbeating, then the fleet's invariants
    (`tools.invariants`): one running container per agent and no other, one account per
    agent, and no order filled twice."""
    agents = daemon.wait_for(healthy(n), f"{n} healthy agents", timeout=120)
    platform = (platform_url, CONTROLLER_KEY) if platform_url else None
    assert violations(daemon, docker_client, instance, n, platform) == []
    assert all(c["State"] == "running" for c in containers(docker_client, instance))
    return agents


class FaultImage:
    """A per-test image tag whose entrypoint misbehaves; `heal()` points the same tag at
    the real agent image, so the next restart runs a healthy agent."""

    def __init__(self, docker_client, instance: str) -> None:
        self.client = docker_client
        self.good = docker_client.images.get(Settings().agent_image)
        self.tag = f"fleet-fault-{instance}:latest"

    def build(self, entrypoint: list[str]) -> str:
        dockerfile = f"FROM {self.good.id}\nENTRYPOINT {json.dumps(entrypoint)}\n"
        self.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=self.tag, rm=True)
        return self.tag

    def heal(self) -> None:
        self.good.tag(self.tag)


@pytest.fixture
def fault_image(docker_client, instance):
    image = FaultImage(docker_client, instance)
    yield image
    subprocess.run(["docker", "rmi", "-f", image.tag], capture_output=True, check=False)


class NewsWire:
    """A NewsAPI-speaking server whose every answer is fresh earnings news about one of
    the watched companies: beats for `period` seconds, then misses, and so on. Event-driven
    agents buy on the beats and sell on the misses, so they keep trading."""

    def __init__(self, period: float = 4.0) -> None:
        self._counter = itertools.count()
        self.period = period
        self.app = Starlette(routes=[Route("/v2/everything", self._everything)])

    async def _everything(self, request: Request) -> JSONResponse:
        n = next(self._counter)
        name = company(WATCHED[n % len(WATCHED)])
        beat = int(time.time() / self.period) % 2 == 0
        title = (
            f"{name} beats quarterly revenue estimates on strong demand"
            if beat
            else f"{name} misses quarterly revenue estimates as demand slumps; shares plunge"
        )
        article = {
            "source": {"id": "reuters", "name": "Reuters"},
            "title": title,
            "description": f"{name} reported revenue {'above' if beat else 'below'} estimates.",
            "url": f"https://example.com/wire/{n}",
            "publishedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return JSONResponse({"status": "ok", "totalResults": 1, "articles": [article]})

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture
def trading(make_daemon, sandbox_process):
    """A Docker fleet on the sandbox with a live news wire: `start(n)` spawns n traders."""
    with serve(NewsWire()) as wire:

        def start(n: int, **env: str) -> Daemon:
            daemon = make_daemon(
                "docker",
                FLEET_PLATFORM_URL=sandbox_process.url,
                FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
                FLEET_NEWS_PROVIDER="newsapi",
                FLEET_MARKET_HOURS="always",  # a live wire, but trading on any day of the week
                FLEET_NEWSAPI_KEY="k",
                FLEET_NEWSAPI_URL=wire,
                FLEET_NEWS_TTL_SECONDS="1",
                FLEET_NEWSAPI_PER_DAY="100000",
                FLEET_MARKET_TIME_SCALE="60",
                FLEET_MARKET_ANCHOR=datetime.now(UTC).isoformat(),
                FLEET_RISK_MAX_ORDERS_PER_DAY="1000",
                **FAST,
                **env,
            )
            body = {"count": n, "seed": 3, "population": TRADERS}
            assert daemon.api("POST", "/v1/agents", json=body).status_code == 201
            return daemon

        yield start


@pytest.fixture
def webhook():
    """A local alert receiver: yields its URL and the list of bodies it was sent."""
    receiver = ScriptedApp().on("/hook", (200, {"ok": True}, {}))
    with serve(receiver) as url:
        yield f"{url}/hook", receiver.seen
