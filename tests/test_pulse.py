"""The agent's heartbeat thread against a real HTTP gateway (scripted answers): it beats
while the trading loop is busy, falls silent once the loop has stalled, reports an error
while its problem lasts, sends the loop's first figures at once, and stops the agent when
retired or refused; and its beats land on whole seconds of the wall clock."""

import json
import threading
import time

import pytest

from agent_runtime.gateway import GatewayClient, TokenRefused
from agent_runtime.pulse import STALL_CYCLES, Pulse, on_the_grain
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

        def pulse(stop=None, clock=None, tick=TICK):
            stop, clock = stop or threading.Event(), clock or Clock()
            made = Pulse(client, lambda: 7, tick, 0, stop, False, clock)
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


def test_an_error_lasts_as_long_as_its_problem_and_a_failed_beat_is_told_once(gateway):
    app, pulse = gateway
    app.on(BEAT, (503, {"error": {"code": "down", "message": "store down"}}, {}))
    beating = pulse()
    beating.report({}, "cycle 3 skipped: platform down")
    wait_until(lambda: app.hits(BEAT) >= 2, "two refused beats")
    app.on(BEAT, (200, {"ok": True, "paused": True}, {}))
    wait_until(lambda: beating.paused, "the pause in an answer")
    errors = [b["last_error"] for b in bodies(app)]
    # the first beat went before the loop's turn; the next told of the first's failure
    assert errors[:2] == [None, "gateway answered 503: store down"]
    # the loop's problem lasts: every beat says so, not only the first after it
    beaten = app.hits(BEAT)
    wait_until(lambda: app.hits(BEAT) >= beaten + 3, "three more beats")
    assert bodies(app)[-1]["last_error"] == "cycle 3 skipped: platform down"
    beating.report({}, None)  # a turn that went well
    wait_until(lambda: bodies(app)[-1]["last_error"] is None, "the error gone with its problem")


def test_an_error_goes_out_as_the_gateway_takes_it(gateway):
    """An error quoting someone else's text may be long or hold a NUL: the gateway refuses
    either, and a refused beat would leave the agent silent, then restarted."""
    app, pulse = gateway
    beating = pulse()
    beating.report({}, "order refused: " + "platform says \x00 " * 500)
    wait_until(lambda: bodies(app)[-1]["last_error"], "a beat with the error")
    told = bodies(app)[-1]["last_error"]
    assert len(told) == 2000 and "\x00" not in told and "says \ufffd " in told


def test_the_loops_first_figures_go_out_at_once_not_a_cycle_later(gateway):
    app, pulse = gateway
    beating = pulse(tick=600)  # a cycle far longer than the test
    assert app.hits(BEAT) == 1
    beating.report({"equity": 99_500.0})
    wait_until(lambda: app.hits(BEAT) == 2, "the beat with the first figures")
    assert bodies(app)[-1]["equity"] == 99_500.0


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


@pytest.mark.parametrize(
    ("now", "delay", "grain", "wait"),
    [
        (1000.25, 10.0, 1.0, 10.75),  # due at 1010.25: beats at 1011
        (1000.0, 10.0, 1.0, 10.0),  # due on the grain: beats then, not a second later
        (1000.9, 10.5, 1.0, 11.1),
        (1000.01, 0.05, 0.005, 0.05),  # the tests' cycle: a grain of a tenth of it
    ],
)
def test_a_beat_waits_at_least_its_delay_and_lands_on_the_grain(now, delay, grain, wait):
    waited = on_the_grain(now, delay, grain)
    assert waited == pytest.approx(wait)
    landed = (now + waited) / grain
    assert landed == pytest.approx(round(landed))
