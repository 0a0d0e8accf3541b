"""What an agent reports is untrusted: bounded at the gateway, and shown to the operator
as plain text, with no markup drawn and no control character reaching the terminal. A
request body is read as sent: no value converted from another type, no NUL in any text."""

import re

import pytest
from pydantic import Field, ValidationError

from orchestrator.tools.harness import wait_until
from orchestrator.untrusted import Body, quoted

HOSTILE = "[bold red]boom[/] [/] \x1b[2J\x07 done"


def test_an_agents_words_reach_the_operator_as_plain_text(make_daemon):
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="60")  # it beats once, then waits
    daemon.fleet("spawn", "1", "--wait")
    (agent,) = daemon.agents()
    token = daemon.agent_token(agent["id"])
    # a cycle ahead of the agent's own: its next beats (refused) cannot overwrite this one
    beat = {"cycle": agent["last_cycle"] + 1, "equity": 100_000.0, "last_error": HOSTILE}
    assert daemon.api("POST", "/v1/agent/heartbeat", token=token, json=beat).status_code == 200

    def shown() -> tuple | None:  # heartbeats reach the store in batches
        listings = (daemon.fleet("ls"), daemon.fleet("show", agent["name"]))
        return listings if all("boom" in listing.stdout for listing in listings) else None

    for listing in wait_until(shown, "the agent's words in the listings"):
        assert listing.returncode == 0, listing.stderr
        assert "[bold red]boom[/] [/]" in listing.stdout  # shown, not drawn
        assert "\x1b" not in listing.stdout and "\x07" not in listing.stdout
        assert "\\x1b[2J\\x07 done" in listing.stdout


def test_numbers_beyond_any_account_are_refused_and_change_nothing(make_daemon):
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="300")
    daemon.fleet("spawn", "1", "--wait")
    (agent,) = daemon.agents()
    token = daemon.agent_token(agent["id"])
    cycle = agent["last_cycle"]
    for claim in (
        {"cycle": cycle, "equity": 1.7e308},
        {"cycle": 2**70},
        {"cycle": cycle, "orders_today": 2**64},
        {"cycle": cycle, "cash": -1e300},
        {"cycle": cycle, "catalysts": {"fda": {"score": 2.0, "trades": 1, "weight": 1.0}}},
        {"cycle": cycle, "catalysts": {"[b]fda": {"score": 0.1, "trades": 1, "weight": 1.0}}},
        {
            "cycle": cycle,
            "catalysts": {f"e{n}": {"score": 0, "trades": 1, "weight": 1} for n in range(17)},
        },
        {"cycle": cycle, "open_trades": {"MRNA": {"catalyst": "fda", "entry": 0}}},
        {"cycle": cycle, "open_trades": {"MRNA": {"catalyst": "<b>", "entry": 1}}},
        {"cycle": cycle, "open_trades": {"<i>MRNA": {"catalyst": "fda", "entry": 1}}},
        {"cycle": cycle, "open_trades": {"MRNA": {"entry": 1}}},
        {
            "cycle": cycle,
            "open_trades": {f"S{n}": {"catalyst": "fda", "entry": 1} for n in range(201)},
        },
    ):
        answer = daemon.api("POST", "/v1/agent/heartbeat", token=token, json=claim)
        assert answer.status_code == 422, (claim, answer.text)
        assert answer.json()["error"]["code"] == "invalid_request"
    (after,) = daemon.agents()
    assert after["last_cycle"] == agent["last_cycle"] and after["equity"] == agent["equity"]
    assert daemon.fleet("ls").returncode == 0

    # what it learned of each kind of event, in bounds, reaches the operator in words
    learned = {
        "m&a": {"score": 0.05, "trades": 3, "weight": 1.25},
        "fda": {"score": -0.02, "trades": 1, "weight": 0.9},
    }
    claim = {"cycle": cycle, "catalysts": learned}
    assert daemon.api("POST", "/v1/agent/heartbeat", token=token, json=claim).status_code == 200

    def shown() -> str:
        return " ".join(daemon.fleet("show", agent["name"]).stdout.split())

    wait_until(lambda: "catalysts m&a" in shown(), "the beat written")
    assert "catalysts m&a ×1.25 (3 trades), fda ×0.90 (1 trade) " in shown()
    detail = daemon.api("GET", f"/v1/agents/{agent['id']}").json()
    assert detail["catalysts"] == learned


def test_a_cycle_that_goes_back_is_refused_until_the_agent_starts_again(make_daemon):
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="300")
    daemon.fleet("spawn", "1", "--wait")
    (agent,) = daemon.agents()
    token = daemon.agent_token(agent["id"])
    cycle = agent["last_cycle"]
    assert cycle is not None and cycle > 1  # the real agent counts on the market clock

    def beat(n: int, error: str | None = None):
        return daemon.api(
            "POST", "/v1/agent/heartbeat", token=token, json={"cycle": n, "last_error": error}
        )

    assert beat(cycle + 1).status_code == 200
    back = beat(cycle - 1, "rewound")
    assert back.status_code == 409, back.text
    assert (
        f"cycle {cycle - 1} is behind the last recorded cycle {cycle + 1}"
        in back.json()["error"]["message"]
    )
    # heartbeats reach the store in batches, a second apart
    (after,) = daemon.wait_for(lambda a: a[0]["last_cycle"] == cycle + 1, "the beat written")
    assert after["last_error"] != "rewound"
    assert beat(cycle + 1).status_code == 200  # the same beat again is a retry, not a step back

    # a new process (bootstrap) counts afresh: a market clock set back must not lock it out
    assert daemon.api("GET", "/v1/agent/bootstrap", token=token).status_code == 200
    assert beat(5).status_code == 200
    daemon.wait_for(lambda a: a[0]["last_cycle"] == 5, "the new process's beat written")


class Probe(Body):
    count: int = 0
    rows: list[dict] = Field(default_factory=list)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"rows": [{"a": {"b": "x\x00"}}]}, "rows.0.a.b: no text may hold a NUL character"),
        ({"rows": [{"k\x00": 1}]}, "a key of rows.0: no text may hold a NUL character"),
        ({"count": "3"}, "count\n  Input should be a valid integer"),
        ({"count": True}, "count\n  Input should be a valid integer"),
        ({"count": 3.0}, "count\n  Input should be a valid integer"),
        ({"other": 1}, "other\n  Extra inputs are not permitted"),
    ],
)
def test_a_body_is_read_as_sent_and_names_where_a_nul_hides(data, said):
    with pytest.raises(ValidationError, match=re.escape(said)):
        Probe.model_validate(data)


def test_a_body_of_the_right_types_passes_and_a_reference_is_quoted_on_one_short_line():
    assert Probe.model_validate({"count": 3, "rows": [{"a": 1.5, "b": "text"}]}).count == 3
    deep = nul = {"a": "x\x00"}
    for _ in range(5000):  # deeper than Python's recursion limit: no RecursionError (a 500)
        deep = {"a": deep}
    with pytest.raises(ValidationError, match=r"rows\.0(\.a){5001}: no text may hold a NUL"):
        Probe.model_validate({"rows": [deep]})
    nul["a"] = "x"
    assert Probe.model_validate({"rows": [deep]}).count == 0
    assert quoted("abc") == "'abc'"
    assert quoted("x" * 3000) == f"'{'x' * 60}'… (3,000 characters)"
