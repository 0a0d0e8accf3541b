"""The bootstrap contract: what the gateway sends is what the agent reads, and a reply out
of contract is refused with the field it got wrong."""

import json
from datetime import UTC, datetime

import pytest

from agent_runtime.contract import Bootstrap, ClockSpec, ContractError, PlatformAccess, Schedule
from agent_runtime.risk import RiskLimits

BOOT = Bootstrap(
    agent_id="a-1",
    name="calm-otter-1a2b",
    strategy="news_momentum",
    personality={"strategy": "news_momentum", "risk_tolerance": 0.4},
    platform=PlatformAccess("calm-otter", "s3cret-pass"),
    schedule=Schedule(10.0, 2.0),
    risk_limits=RiskLimits(0.2, 10, 1000.0, 50),
    clock=ClockSpec(60.0, datetime(2026, 12, 1, 14, 30, tzinfo=UTC), "nyse"),
    paused=False,
)


def test_a_bootstrap_reads_back_as_it_was_sent_and_hides_its_password():
    body = json.loads(json.dumps(BOOT.to_json()))  # as it crosses the wire
    assert body["clock"]["anchor"] == "2026-12-01T14:30:00+00:00"
    assert body["platform"] == {"username": "calm-otter", "password": "s3cret-pass"}
    assert body["followed_at"] is None
    assert Bootstrap.from_json(body) == BOOT
    followed = BOOT._replace(followed_at=datetime(2026, 12, 1, 15, 2, 3, 456, tzinfo=UTC))
    assert Bootstrap.from_json(json.loads(json.dumps(followed.to_json()))) == followed
    del body["followed_at"]  # a gateway older than the field
    assert Bootstrap.from_json(body) == BOOT
    assert Bootstrap.from_json(BOOT._replace(platform=None).to_json()).platform is None
    assert "s3cret-pass" not in repr(BOOT) and "calm-otter" in repr(BOOT)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda b: b.pop("agent_id"), "agent_id: missing"),
        (lambda b: b["schedule"].update(cycle_seconds="10"), "schedule.cycle_seconds: expected"),
        (lambda b: b["risk_limits"].update(max_positions=True), "risk_limits.max_positions"),
        (lambda b: b["platform"].pop("password"), "platform.password: missing"),
        (lambda b: b["clock"].update(anchor="yesterday"), "clock.anchor: 'yesterday'"),
        (lambda b: b.update(paused=0), "paused: expected bool"),
        (lambda b: b.update(followed_at=17), "followed_at: expected str"),
        (lambda b: b.update(followed_at="2026-12-01T15:00"), "followed_at: .* no offset"),
    ],
)
def test_a_reply_out_of_contract_names_its_field(change, named):
    body = json.loads(json.dumps(BOOT.to_json()))
    change(body)
    with pytest.raises(ContractError, match=named):
        Bootstrap.from_json(body)


def test_an_int_is_a_fine_float():
    body = BOOT.to_json() | {"schedule": {"cycle_seconds": 10, "jitter_seconds": 2}}
    assert Bootstrap.from_json(body).schedule == Schedule(10.0, 2.0)
