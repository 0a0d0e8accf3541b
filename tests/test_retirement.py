"""Retirement when the platform holds it up, on a real store with the in-memory runtime and
a clock that moves only when told; the platform's controller API is a stand-in whose
refusals the test scripts in turn (the sandbox never refuses a retirement)."""

from cryptography.fernet import Fernet

from orchestrator.control.accounts import Accounts
from orchestrator.control.plan import Retire
from orchestrator.control.retirement import Retirement
from orchestrator.lifecycle import EventKind, Phase
from orchestrator.state.orders import OrderBook
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp
from platform_client import PlatformClient
from tests.fakes import Clock, FakeRuntime


def refusal(status, code):
    return (status, {"error": {"code": code, "message": f"refused: {code}"}}, {})


def test_a_platform_that_flaps_writes_a_new_reason_at_most_every_five_minutes(store):
    clock = Clock()
    (agent,), _ = store.spawn("k", [{"name": "p", "strategy": "contrarian"}], str, clock.now())
    store.transition(
        agent.id, EventKind.ACCOUNT_CREATED, "account", clock.now(), platform_user_id="u-1"
    )
    store.request_retire(agent.id, clock.now())
    platform = ScriptedApp().on(
        "/api/controller/agents/u-1/retire",
        refusal(401, "invalid_controller_key"),
        refusal(401, "invalid_controller_key"),
        refusal(403, "forbidden"),  # another reason, soon after the first
        refusal(403, "forbidden"),  # …and five minutes on
        (200, {"user_id": "u-1", "status": "disabled"}, {}),
    )
    with serve(platform) as url:
        client = PlatformClient(url, controller_key="key", deadline=1)
        accounts = Accounts(client, Fernet(Fernet.generate_key()))
        retirement = Retirement(store, OrderBook(store), FakeRuntime(), accounts, clock.now, 1)
        reasons = []
        for wait in (0, 10, 10, 300, 10):
            clock.advance(wait)
            retirement.retire(Retire(agent.id, (), disable_account=True))
            reasons.append(store.get(agent.id).reason)
    assert reasons[:4] == [reasons[0]] * 3 + [reasons[3]]
    assert (
        reasons[0].startswith("waiting for the platform: ")
        and "invalid_controller_key" in reasons[0]
    )
    assert "forbidden" in reasons[3] and reasons[4] is None
    timeline = [e.kind for e in store.events(agent.id)]
    assert timeline[-5:] == [
        EventKind.RETIRE_REQUESTED,
        EventKind.RETIRE_WAITING,
        EventKind.RETIRE_WAITING,
        EventKind.ACCOUNT_DISABLED,
        EventKind.RETIRED,
    ]
    assert store.get(agent.id).phase == Phase.RETIRED
    retirement.retire(Retire(agent.id, (), disable_account=True))  # once more: nothing
    assert len(store.events(agent.id)) == len(timeline)
