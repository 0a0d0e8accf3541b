"""The daemon's door: a request is authenticated before its body is read, and a body over
its route's cap is refused with 413 without being buffered, declared or streamed."""

from pathlib import Path

import httpx

from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp
from tests.conftest import raw_post

HUNDRED_MB = 100 * 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_bodies_are_refused_before_they_are_read(make_daemon):
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="60")
    daemon.fleet("spawn", "1", "--wait")
    (agent,) = daemon.agents()
    token = daemon.agent_token(agent["id"])
    before = rss_mib(daemon.process.pid)

    beat = "/v1/agent/heartbeat"
    assert raw_post(daemon.url, beat, None, HUNDRED_MB, 65536).endswith("401 Unauthorized")
    assert raw_post(daemon.url, beat, "forged", HUNDRED_MB, 65536).endswith("401 Unauthorized")
    assert raw_post(daemon.url, beat, token, HUNDRED_MB, 65536).endswith(
        "413 Request Entity Too Large"
    )
    assert raw_post(daemon.url, "/v1/agents", None, HUNDRED_MB, 65536).endswith("401 Unauthorized")

    def stream(total: int, chunk: int = 64 * 1024):  # chunked: no length to go by
        for _ in range(total // chunk):
            yield b" " * chunk

    refused = httpx.post(
        f"{daemon.url}{beat}",
        content=stream(8 * 1024 * 1024),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "too_large"
    assert rss_mib(daemon.process.pid) - before < 30  # nothing was buffered whole

    ok = daemon.api(
        "POST", beat, token=token, json={"cycle": agent["last_cycle"], "equity": 100_000.0}
    )
    assert ok.status_code == 200  # an ordinary beat still goes through
    assert ok.json() == {"paused": False, "retire": False}
    assert (ok.headers["content-type"], ok.headers["x-frame-options"]) == (
        "application/json",
        "DENY",
    )


def test_one_agent_over_its_rate_gets_429_and_the_rest_of_the_fleet_does_not(make_daemon):
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="60")  # 10 calls a minute
    daemon.fleet("spawn", "2", "--wait")
    noisy, quiet = daemon.agents()
    token = daemon.agent_token(noisy["id"])
    with httpx.Client(base_url=daemon.url, headers={"Authorization": f"Bearer {token}"}) as http:
        answers = [http.get("/v1/feed/universe") for _ in range(120)]
    refused = [a for a in answers if a.status_code == 429]
    assert 60 <= len(refused) <= 120 - 20  # its burst went through, the rest did not
    assert {a.status_code for a in answers} == {200, 429}
    assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
    assert refused[0].json()["error"]["code"] == "rate_limited"

    other = daemon.api("GET", "/v1/feed/universe", token=daemon.agent_token(quiet["id"]))
    assert other.status_code == 200
    metrics = httpx.get(f"{daemon.url}/metrics").text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("fleet_gateway_rate_limited_total") and noisy["id"] in line
    )
    assert float(line.rsplit(" ", 1)[1]) == len(refused)


def test_the_agent_keeps_quiet_for_as_long_as_a_429_says():
    from agent_runtime.gateway import GatewayClient, RateLimited

    heartbeat = "/v1/agent/heartbeat"
    app = ScriptedApp().on(
        heartbeat,
        (429, {"error": {}}, {"Retry-After": "5"}),
        (200, {"paused": False, "retire": False}, {}),
    )
    now = [100.0]
    with serve(app) as url:
        client = GatewayClient(url, "token", clock=lambda: now[0])
        for moment in (100.0, 102.0, 104.9):
            now[0] = moment
            try:
                client.heartbeat({"cycle": 1})
            except RateLimited as exc:
                assert exc.retry_after > 0
            else:
                raise AssertionError("a call inside the quiet time went through")
        assert app.hits(heartbeat) == 1  # one request, then silence
        now[0] = 105.0
        assert client.heartbeat({"cycle": 1}) == {"paused": False, "retire": False}
        assert app.hits(heartbeat) == 2
        assert app.seen[-1].headers["authorization"] == "Bearer token"
