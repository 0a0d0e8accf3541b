"""`fleet demo`: the sandbox platform, a daemon and N agents in one command.

Everything runs in a throw-away state dir with its own instance name, so the demo never
touches another fleet. On the way out the daemon is stopped and every container labelled
with the demo's instance is removed: nothing is left running. Only then are the
sandbox's fills counted, when no agent can add one.

A kept state dir keeps the market time the demo stopped at, and the next demo in it goes
on from there: its market never runs the same days again (the simulated news of a market
day is the same every time, so its agents would trade them again). Its agents wait there
to be started again, as after a spawn, not as agents whose workloads vanished (a failure
each, and a restart counted).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from feeds.clock import MarketClock
from orchestrator.lifecycle import WANTS_CONTAINER, EventKind, Phase
from orchestrator.settings import MAX_MARKET_DRIFT
from orchestrator.state.db import existing_store
from orchestrator.tools.harness import (
    HarnessError,
    Service,
    fleet_env,
    port_taken,
    remove_instance,
)
from sandbox.store import filled_orders

MARKET_FILE = "market-stopped-at"  # in a kept state dir: the market time the demo stopped at


class DemoError(Exception):
    """The demo could not start; the message says why."""


@dataclass
class Demo:
    """A running demo: where to reach it and how to sign in."""

    state_dir: Path
    url: str
    platform_url: str
    token: str
    market_from: datetime  # the market time it started at
    filled: int | None = None  # orders the sandbox filled, counted once everything stopped


@contextmanager
def running_demo(
    runtime: str, speed: float, port: int, sandbox_port: int, keep: Path | None
) -> Iterator[Demo]:
    """Start the sandbox and the daemon; stop both and remove every container on exit."""
    for what, number, option in (
        ("daemon", port, "--port"),
        ("sandbox", sandbox_port, "--sandbox-port"),
    ):
        if port_taken(number):
            raise DemoError(f"port {number} for the {what} is taken; pass another with {option}")
    state = keep or Path(tempfile.mkdtemp(prefix="agent-fleet-demo-"))
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot keep the demo's state in {state}: {exc.strerror}") from None
    wall = datetime.now(UTC)
    market = MarketClock(speed, _anchor(state / MARKET_FILE, speed, wall))
    instance = f"demo-{secrets.token_hex(3)}"
    platform_url = f"http://127.0.0.1:{sandbox_port}"
    passed_on = {
        k: os.environ[k] for k in ("FLEET_AGENT_IMAGE", "FLEET_DOCKER_NETWORK") if k in os.environ
    }
    env = fleet_env(
        FLEET_STATE_DIR=str(state),
        FLEET_INSTANCE=instance,
        FLEET_RUNTIME=runtime,
        FLEET_PORT=str(port),
        FLEET_SANDBOX_PORT=str(sandbox_port),
        FLEET_PLATFORM_URL=platform_url,
        FLEET_CONTROLLER_API_KEY=secrets.token_hex(16),
        FLEET_AGENT_CYCLE_SECONDS="2",
        FLEET_MARKET_TIME_SCALE=str(speed),
        # A busy market: every symbol has news on most days, so agents trade within minutes.
        FLEET_MARKET_EVENT_RATE="0.8",
        FLEET_MARKET_ANCHOR=market.anchor.isoformat(),
        FLEET_EQUITY_SAMPLE_SECONDS="10",
        FLEET_DASHBOARD_ACTIONS="true",
        **passed_on,
    )
    url = f"http://127.0.0.1:{port}"
    services = [
        # Their own sessions: Ctrl-C reaches the demo, which stops them in order.
        Service(["sandbox"], env, state / "sandbox.log", f"{platform_url}/healthz", detach=True),
        Service(["up"], env, state / "up.log", f"{url}/healthz", detach=True),
    ]
    started: list[Service] = []
    demo: Demo | None = None
    try:
        for service in services:
            started.append(service)
            service.start(60)
        token = (state / "operator-token").read_text().strip()
        demo = Demo(state, url, platform_url, token, market.at(wall))
        yield demo
    except HarnessError as exc:
        raise DemoError(str(exc)) from None
    finally:
        for service in reversed(started):
            service.stop(30)
        if runtime == "docker":
            remove_instance(instance)
        if keep is not None:
            with suppress(OSError):  # then the next demo starts at the wall's time
                (state / MARKET_FILE).write_text(f"{market.now().isoformat()}\n")
            with suppress(SQLAlchemyError):  # then the next demo finds them vanished
                _stopped(state / "fleet.db")
        if demo is not None:
            with suppress(SQLAlchemyError):  # then the count is not shown
                demo.filled = filled_orders(f"sqlite:///{(state / 'sandbox.db').absolute()}")
        if keep is None:
            shutil.rmtree(state, ignore_errors=True)


def _anchor(stopped_at: Path, speed: float, wall: datetime) -> datetime:
    """The market clock's anchor: now, or, where an earlier demo stopped ahead of the
    wall's time, the moment that puts the market back where it stopped (unless that is
    farther ahead than the settings allow)."""
    try:
        stopped = datetime.fromisoformat(stopped_at.read_text().strip())
    except (OSError, ValueError):  # none kept, or not a time: start afresh
        return wall
    if speed == 1 or stopped.tzinfo is None or not wall < stopped < wall + MAX_MARKET_DRIFT:
        return wall
    # anchor + (wall - anchor) × speed = stopped
    return wall - (stopped - wall) / (speed - 1)


def _stopped(database: Path) -> None:
    """Record that the demo removed the workloads of the agents in its kept store: they
    wait, pending, for the next demo to start them."""
    store = existing_store(f"sqlite:///{database.absolute()}")
    if store is None:
        return
    try:
        now = datetime.now(UTC)
        for agent in store.agents(WANTS_CONTAINER):
            if agent.container_id is None:
                continue  # none to remove: never started, or waiting to start again
            store.transition(
                agent.id,
                EventKind.STOPPED,
                "the demo stopped: its workload was removed",
                now,
                phase=Phase.PENDING,
                expect=WANTS_CONTAINER,
                container_id=None,
                container_started_at=None,
                healthy_since=None,
                next_restart_at=None,
            )
    finally:
        store.engine.dispose()
