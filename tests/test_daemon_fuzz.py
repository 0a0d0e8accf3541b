"""Property-based run of the daemon's own OpenAPI document, as the operator and as an
agent: no request may get a 5xx, and every refusal is the one error body, never a
traceback."""

from collections import Counter
from contextlib import suppress

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

# Valid requests to these would act on the fleet (spawn hundreds, scale it now or on a
# schedule, stop every order, retire the one agent, start a rollout): they are sent only
# malformed.
ACTING = {
    "POST /v1/agents",
    "PUT /v1/fleet/desired",
    "POST /v1/schedules/ramp",
    "POST /v1/fleet/pause",
    "DELETE /v1/agents/{ref}",
    "POST /v1/rollout/{command}",
}


def running_daemon(make_daemon, postgres_url):
    """A daemon on PostgreSQL (which refuses a NUL in text, where SQLite takes it) with one
    running agent, and the headers of its two kinds of caller."""
    daemon = make_daemon(
        "process",
        FLEET_DATABASE_URL=postgres_url,
        # ten calls an agent cycle: a short cycle lets the fuzzing through the agent's rate
        FLEET_AGENT_CYCLE_SECONDS="0.1",
        # a fuzzed beat far ahead leaves the agent's own beats behind, refused: it is not
        # restarted (with a new token) while the fuzzing lasts
        FLEET_HEARTBEAT_TIMEOUT_SECONDS="3600",
    )
    assert daemon.fleet("spawn", "1").returncode == 0
    (agent,) = daemon.wait_for(
        lambda a: len(a) == 1 and a[0]["phase"] == "running", "a running agent"
    )
    bearer = {"operator": daemon.token, "agent": daemon.agent_token(agent["id"])}
    return daemon, {who: {"Authorization": f"Bearer {t}"} for who, t in bearer.items()}


def operations(url: str) -> list:
    document = httpx.get(f"{url}/openapi.json").json()
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))  # else FastAPI warns in the daemon's log at each read
    schema = schemathesis.openapi.from_dict(document)
    return [result.ok() for result in schema.get_all_operations()]


def _caller(label: str) -> str:
    agent_routes = ("/v1/agent/", "/v1/feed/", "/v1/llm/", "/v1/platform/")
    return "agent" if any(route in label for route in agent_routes) else "operator"


def test_no_request_makes_the_daemon_fail(make_daemon, postgres_url):
    daemon, headers = running_daemon(make_daemon, postgres_url)
    refuse_nul_characters(daemon, headers)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        fuzz(daemon, headers, mode)


def refuse_nul_characters(daemon, headers: dict) -> None:
    """A NUL in a reference finds nothing, and in a body it is the sender's error (422):
    PostgreSQL cannot hold one, and the store must not look broken for it."""
    operator, agent = headers["operator"], headers["agent"]
    record = {
        "v": 1,
        "cycle": 1,
        "at": "2026-12-01T15:00:00+00:00",
        "strategy": "news_momentum",
        "strategy_version": 1,
        "inputs": {"headlines": [{"id": "h-1", "text": "a\x00b"}]},
        "proposals": [],
        "dropped": [],
        "clamped": [],
        "orders": [],
    }
    for method, path, caller, body, status, said in [
        ("GET", "/v1/agents/a%00b", operator, None, 404, "no agent 'a\\x00b'"),
        ("GET", "/v1/orders/a%00b/why", operator, None, 404, "no order 'a\\x00b'"),
        ("DELETE", "/v1/schedules/a%00b", operator, None, 404, "no schedule 'a\\x00b'"),
        (
            "POST",
            "/v1/agents",
            operator,
            {"count": 1, "idempotency_key": "key-\x00-0001"},
            422,
            "idempotency_key: no text may hold a NUL character",
        ),
        (
            "POST",
            "/v1/agent/heartbeat",
            agent,
            {"cycle": 2**52, "last_error": "bad\x00news"},
            422,
            "last_error: no text may hold a NUL character",
        ),
        (
            "POST",
            "/v1/agent/decisions",
            agent,
            {"records": [record]},
            422,
            "records.0.inputs.headlines.0.text: no text may hold a NUL character",
        ),
    ]:
        answer = httpx.request(method, f"{daemon.url}{path}", headers=caller, json=body)
        assert answer.status_code == status, (path, answer.text)
        assert said in answer.json()["error"]["message"], (path, answer.text)
    assert httpx.get(f"{daemon.url}/healthz").json()["status"] == "ok"
    assert len(daemon.agents()) == 1


def fuzz(daemon, headers: dict, mode: GenerationMode) -> None:
    url = daemon.url
    ops = [
        op
        for op in operations(url)
        if op.label not in {"GET /healthz", "GET /metrics"}
        and not (mode == GenerationMode.POSITIVE and op.label in ACTING)
    ]
    assert len(ops) >= 25
    failures, answered = [], Counter()
    for op in ops:

        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case):
            response = case.call(
                base_url=url, headers=headers[_caller(case.operation.label)], timeout=30
            )
            answered[case.operation.label, response.status_code] += 1
            try:
                error = response.json()["error"] if response.status_code >= 400 else None
                one_body = error is None or {"code", "message"} <= set(error)
            except (ValueError, KeyError, TypeError):
                one_body = False
            if response.status_code >= 500 or not one_body or "Traceback" in response.text:
                failures.append(
                    f"{case.operation.label}: {response.status_code} {response.text[:200]}"
                )

        with suppress(Unsatisfiable):  # an operation without inputs has no malformed variant
            check()
    assert failures == []
    called = {label for label, _ in answered}
    if mode == GenerationMode.POSITIVE:
        assert called == {op.label for op in ops}
    # the fuzzing reached the handlers: past the Gatekeeper and the agent's rate
    reached = {label for (label, status) in answered if status not in (401, 429)}
    assert reached == called, called - reached
    assert len(daemon.agents()) == 1  # no malformed request spawned, scaled or retired
