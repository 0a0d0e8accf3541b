"""The agent's heartbeat thread against a real HTTP gateway (scripted answers): it beats
while the trading loop is busy, falls silent once the loop has stalled, carries an error
until a beat has delivered it, and stops the agent when retired or refused."""

import json
import threading
import time

import pytest

from agent_runtime.gateway import GatewayClient, TokenRefused
from agent_runtime.pulse import STALL_CYCLES, Pulse
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp

BEAT = "/v1/agent/heartbeat"
TICK = 0.05


class Clock:
    """The pulse's monotonic clock, moved only by the test."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


def wait_until(check, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def gateway():
    """A scripted gateway whose heartbeat answers can be changed, and a pulse factory."""
    app = ScriptedApp().on(BEAT, (200, {"ok": True, "paused": False}, {}))
    pulses = []
    with serve(app) as url:
        client = GatewayClient(url, "token")

        def pulse(stop=None, clock=None):
            stop, clock = stop or threading.Event(), clock or Clock()
            made = Pulse(client, lambda: 7, TICK, 0, stop, False, clock)
            pulses.append(made)
            made.start()
            return made

        yield app, pulse
        for made in pulses:
            made.close()
        client.close()


def bodies(app):
    return [json.loads(seen.body) for seen in app.seen if seen.path == BEAT]


def test_it_beats_while_the_loop_is_busy_and_falls_silent_once_the_loop_stalled(gateway):
    app, pulse = gateway
    clock = Clock()
    beating = pulse(clock=clock)
    assert app.hits(BEAT) >= 1  # the first beat has gone when the pulse has started
    wait_until(lambda: app.hits(BEAT) >= 3, "three beats with the loop never turning")
    assert bodies(app)[0] == {"cycle": 7, "phase": "running", "last_error": None}

    clock.at += STALL_CYCLES * TICK + 1  # the loop has not turned for longer than the stall
    time.sleep(2 * TICK)  # a beat under way when it stalled may still arrive
    silent_from = app.hits(BEAT)
    time.sleep(10 * TICK)
    assert app.hits(BEAT) == silent_from

    beating.report({"equity": 101.5})  # the loop turns again
    wait_until(lambda: app.hits(BEAT) > silent_from, "a beat once the loop turned again")
    assert bodies(app)[-1]["equity"] == 101.5


def test_an_error_is_carried_until_a_beat_delivers_it_and_the_answer_is_kept(gateway):
    app, pulse = gateway
    app.on(BEAT, (503, {"error": {"code": "down", "message": "store down"}}, {}))
    beating = pulse()
    beating.report({}, "cycle 3 skipped: platform down")
    wait_until(lambda: app.hits(BEAT) >= 2, "two refused beats")
    app.on(BEAT, (200, {"ok": True, "paused": True}, {}))
    wait_until(lambda: beating.paused, "the pause in an answer")
    delivered = [b["last_error"] for b in bodies(app) if b["last_error"]]
    assert delivered[0] in ("cycle 3 skipped: platform down", "gateway answered 503: store down")
    wait_until(lambda: bodies(app)[-1]["last_error"] is None, "the error cleared once delivered")


def test_retirement_and_a_refused_token_stop_the_agent(gateway):
    app, pulse = gateway
    app.on(BEAT, (200, {"ok": True, "paused": False, "retire": True}, {}))
    stop = threading.Event()
    retired = pulse(stop=stop)
    wait_until(stop.is_set, "the retirement to stop the agent")
    assert retired.retired and retired.refused is None

    app.on(BEAT, (401, {"error": {"code": "token", "message": "no"}}, {}))
    stop = threading.Event()
    refused = pulse(stop=stop)
    wait_until(stop.is_set, "the refusal to stop the agent")
    assert isinstance(refused.refused, TokenRefused) and not refused.retired
