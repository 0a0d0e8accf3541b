"""Supervision state in the store (kill switch, alert outbox), the operator commands
(scale), and alert delivery to a real local webhook server."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

from orchestrator.control.alerts import MAX_ATTEMPTS, AlertSender
from orchestrator.lifecycle import Phase
from orchestrator.operations.commands import Commands, Scaled
from orchestrator.operations.sampling import Sampling
from orchestrator.state.health import StoreHealth
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def commands(store, now=NOW):
    """Operator commands on `store`, counting how often they wake the reconciler."""
    woken = []
    made = Commands(store, b"k" * 32, lambda: woken.append(1), lambda: now, flatten_deadline=None)
    made.woken = woken
    return made


def scale(store, size, newest_first=True, now=NOW):
    scaled = commands(store, now).scale(size, Sampling(seed=1), newest_first)
    return scaled.spawned, scaled.retiring


def test_the_kill_switch_is_persisted_and_alerts_once_per_change(store):
    assert store.paused() is False
    assert store.set_paused(True, NOW) is True
    assert store.set_paused(True, NOW) is False  # a retried pause changes nothing
    assert store.paused() is True
    assert store.set_paused(False, NOW) is True
    assert [a.kind for a in store.alerts()] == ["resumed", "paused"]


def test_scale_spawns_the_missing_agents_and_is_idempotent(store):
    operator = commands(store)
    spawned = operator.scale(3, Sampling(seed=1)).spawned
    assert len(spawned) == 3 and operator.woken == [1]
    assert operator.scale(3, Sampling(seed=1)) == Scaled([], [])
    assert operator.woken == [1]  # nothing changed, nothing to wake for
    spawned, _ = scale(store, 5)
    assert len(spawned) == 2
    assert len(store.agents()) == 5


def test_scale_down_retires_the_newest_first_unless_told_otherwise(store):
    first, _ = scale(store, 2)
    later, _ = scale(store, 4, now=NOW + timedelta(seconds=1))
    _, (newest,) = scale(store, 3)
    assert newest.id in {a.id for a in later}
    _, (oldest,) = scale(store, 2, newest_first=False)
    assert oldest.id in {a.id for a in first}
    assert store.get(newest.id).phase == store.get(oldest.id).phase == Phase.RETIRING
    assert "scaled to 2" in store.events(oldest.id)[-1].message


def test_an_alert_is_queued_in_the_same_transaction_as_its_change(store):
    (agent,), _ = scale(store, 1)
    store.transition(
        agent.id, "exited", "boom", NOW, phase=Phase.CRASHLOOP, alert=("crashloop", "it loops")
    )
    (alert,) = store.due_alerts(NOW)
    assert (alert.kind, alert.agent_id, alert.text, alert.delivery) == (
        "crashloop",
        agent.id,
        "it loops",
        "pending",
    )


def deliver(store, url, rounds=1, now=NOW):
    sender = AlertSender(store, url, "inst", lambda: now, StoreHealth(lambda: now))

    async def go():
        for _ in range(rounds):
            await sender.deliver_due()
        await sender._http.aclose()

    asyncio.run(go())


def test_alerts_are_posted_slack_style_and_retried_with_back_off(store):
    store.set_paused(True, NOW)
    hook = ScriptedApp().on("/hook", (500, {"error": "x"}, {}), (200, {"ok": True}, {}))
    with serve(hook) as url:
        deliver(store, f"{url}/hook")  # refused: retried later, not now
        (alert,) = store.alerts()
        assert (alert.delivery, alert.attempts) == ("pending", 1)
        assert store.due_alerts(NOW) == []
        deliver(store, f"{url}/hook", now=NOW + timedelta(seconds=1))
        deliver(store, f"{url}/hook", now=NOW + timedelta(seconds=2))
    (alert,) = store.alerts()
    assert (alert.delivery, alert.attempts) == ("sent", 2)
    assert hook.hits("/hook") == 2  # sent once, after one refusal
    body = json.loads(hook.seen[-1].body)
    assert (
        body["text"]
        == "[agent-fleet inst] fleet paused: agents submit no orders until `fleet resume`"
    )
    assert body["kind"] == "paused"


def test_an_alert_reaches_the_webhook_as_plain_text(store):
    (agent,), _ = scale(store, 1)
    hostile = "exited: <!channel> <https://evil.example|click> & \x1b[2J"
    store.transition(
        agent.id, "exited", "x", NOW, phase=Phase.CRASHLOOP, alert=("crashloop", hostile)
    )
    hook = ScriptedApp().on("/hook", (200, {"ok": True}, {}))
    with serve(hook) as url:
        deliver(store, f"{url}/hook")
    text = json.loads(hook.seen[-1].body)["text"]
    assert text == (
        "[agent-fleet inst] exited: &lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; "
        "\\x1b[2J"
    )


def test_an_unreachable_webhook_is_given_up_after_the_last_attempt(store):
    store.set_paused(True, NOW)
    moment = NOW
    for _ in range(MAX_ATTEMPTS):
        moment += timedelta(minutes=10)
        deliver(store, "http://127.0.0.1:9/hook", now=moment)
    (alert,) = store.alerts()
    assert (alert.delivery, alert.attempts) == ("failed", MAX_ATTEMPTS)
    assert "unreachable" in alert.last_error


def test_without_a_webhook_alerts_are_only_logged(store, caplog):
    store.set_paused(True, NOW)
    deliver(store, None)
    assert store.alerts()[0].delivery == "logged"
    assert "fleet paused" in caplog.text
