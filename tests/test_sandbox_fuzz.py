"""Property-based run of the sandbox's own OpenAPI document, on PostgreSQL: no request may
get a 5xx."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from orchestrator.tools.harness import serve
from platform_client import PlatformClient
from sandbox.app import create_sandbox_app
from tests.conftest import CONTROLLER_KEY, sandbox_config


@pytest.fixture
def live_sandbox(postgres_url):
    # PostgreSQL, which refuses more than SQLite does (a NUL in text, a number out of range)
    with serve(create_sandbox_app(sandbox_config(postgres_url))) as url:
        controller = PlatformClient(url, controller_key=CONTROLLER_KEY)
        creds = controller.create_agent("fuzzer", "Fuzzer")
        token = PlatformClient(url).login(creds.username, creds.password).access_token
        # Valid credentials on every request, so the fuzzing reaches the handlers.
        yield url, {"X-Controller-Key": CONTROLLER_KEY, "Authorization": f"Bearer {token}"}


def operations(url):
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_the_sandbox_fail(live_sandbox, mode):
    url, headers = live_sandbox
    ops = operations(url)
    assert len(ops) >= 10
    failures, calls = [], []
    for op in ops:

        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case):
            response = case.call(base_url=url, headers=headers)
            calls.append(case.operation.label)
            if response.status_code >= 500:
                failures.append(
                    f"{case.operation.label}: {response.status_code} {response.text[:200]}"
                )
            assert response.status_code < 500

        try:
            check()
        except AssertionError:
            pass  # collected above with the operation's label
        except Unsatisfiable:
            pass  # an operation without inputs has no malformed variant
    assert failures == []
    if mode == GenerationMode.POSITIVE:
        assert set(calls) == {op.label for op in ops}
    else:  # every operation whose body or query can be malformed
        assert {
            "POST /api/controller/create-agent",
            "POST /api/auth/login",
            "POST /api/trading/submit",
            "GET /api/trading/orders",
            "POST /api/subscriptions",
            "GET /api/social/feed",
        } <= set(calls)
