"""What an agent reports is untrusted: bounded at the gateway, and shown to the operator
as plain text, with no markup drawn and no control character reaching the terminal."""

HOSTILE = "[bold red]boom[/] [/] \x1b[2J\x07 done"


def test_an_agents_words_reach_the_operator_as_plain_text(make_daemon):
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="60")  # it beats once, then waits
    daemon.fleet("spawn", "1", "--wait")
    (agent,) = daemon.agents()
    token = daemon.agent_token(agent["id"])
    beat = {"cycle": 1, "equity": 100_000.0, "last_error": HOSTILE}
    assert daemon.api("POST", "/v1/agent/heartbeat", token=token, json=beat).status_code == 200

    for listing in (daemon.fleet("ls"), daemon.fleet("show", agent["name"])):
        assert listing.returncode == 0, listing.stderr
        assert "[bold red]boom[/] [/]" in listing.stdout  # shown, not drawn
        assert "\x1b" not in listing.stdout and "\x07" not in listing.stdout
        assert "\\x1b[2J\\x07 done" in listing.stdout


def test_numbers_beyond_any_account_are_refused_and_change_nothing(make_daemon):
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="60")
    daemon.fleet("spawn", "1", "--wait")
    (agent,) = daemon.agents()
    token = daemon.agent_token(agent["id"])
    for claim in (
        {"cycle": 2, "equity": 1.7e308},
        {"cycle": 2**70},
        {"cycle": 3, "orders_today": 2**64},
        {"cycle": 4, "cash": -1e300},
    ):
        answer = daemon.api("POST", "/v1/agent/heartbeat", token=token, json=claim)
        assert answer.status_code == 422, (claim, answer.text)
        assert answer.json()["error"]["code"] == "invalid_request"
    (after,) = daemon.agents()
    assert after["last_cycle"] == agent["last_cycle"] and after["equity"] == agent["equity"]
    assert daemon.fleet("ls").returncode == 0
