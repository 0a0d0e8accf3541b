"""`fleet dashboard` driven in a real pseudo-terminal (tmux), its screen read back."""

import shlex

from orchestrator.cli.live import FRAME_LINES, fitting
from orchestrator.operations.summaries import problems_first
from orchestrator.tools.harness import FLEET, wait_until


def test_the_dashboard_shows_the_fleet_live_and_leaves_on_ctrl_c(make_daemon, tmux):
    session, run = tmux
    daemon = make_daemon()
    daemon.fleet("spawn", "2", "--wait")
    names = [a["name"] for a in daemon.agents()]
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in daemon.env.items() if k.startswith("FLEET_"))
    command = f"env {env} {shlex.join(FLEET)} dashboard --interval 0.5; echo EXITED $?; sleep 600"
    run("new-session", "-d", "-s", session, "-x", "160", "-y", "45", command)

    def screen() -> str:
        return run("capture-pane", "-p", "-t", session)

    def showing(*texts: str) -> str:
        shown = screen()
        return shown if all(text in shown for text in texts) else ""

    shown = wait_until(lambda: showing(*names), "the agents")
    assert "desired 2" in shown and "running 2" in shown and "latest events" in shown
    assert "market always open" in shown and "P&L today" in shown

    daemon.fleet("pause")  # the next refresh shows it
    wait_until(lambda: showing("PAUSED"), "the paused flag")
    daemon.fleet("spawn", "1")
    wait_until(lambda: showing("desired 3"), "the new agent")

    run("send-keys", "-t", session, "C-c")
    after = wait_until(lambda: showing("EXITED"), "the exit")
    assert "EXITED 0" in after and "Traceback" not in after


def test_a_fleet_taller_than_the_terminal_shows_the_agents_that_fit_and_counts_the_rest(
    make_daemon, tmux
):
    session, run = tmux
    daemon = make_daemon()
    daemon.fleet("spawn", "12", "--wait")
    names = sorted(a["name"] for a in daemon.agents())
    # the daemon sends only as many as asked, those that most need attention first
    worst = daemon.api("GET", "/v1/agents", params={"worst": 3}).json()
    assert [a["name"] for a in worst] == names[:3]  # all running: by name
    assert daemon.api("GET", "/v1/agents", params={"worst": 0}).status_code == 422

    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in daemon.env.items() if k.startswith("FLEET_"))
    # The size the terminal says, whatever tmux's environment holds (here COLUMNS=80)
    size = "COLUMNS=160 LINES=26"
    command = f"env {size} {env} {shlex.join(FLEET)} dashboard --interval 0.5; sleep 600"
    run("new-session", "-d", "-s", session, "-x", "160", "-y", "26", command)

    def counted() -> list[str]:
        """The agents shown, once the screen shows them and counts the rest."""
        shown = run("capture-pane", "-p", "-t", session)
        table = shown.partition(" NAME ")[2].partition("more not shown")[0]  # not the events
        listed = [name for name in names if name in table]
        rest = f"{12 - len(listed)} more not shown: `fleet ls` lists every agent"
        return listed if listed == names[: len(listed)] and rest in shown else []

    listed = wait_until(counted, "the agents that fit, first by name, and the rest counted")
    assert 3 <= len(listed) < 12 and len(listed) == 26 - FRAME_LINES


def test_the_agents_that_need_attention_come_first_and_fill_the_room_they_have():
    def agent(name: str, phase: str = "running", error: str | None = None) -> dict:
        reason = None if phase in ("running", "starting") else f"{phase}: it keeps exiting"
        return {"name": name, "phase": phase, "last_error": error, "reason": reason}

    fleet = [
        agent("a"),
        agent("b", error="quote feed timed out"),
        agent("c", "crashloop"),
        agent("d", "failed"),
        agent("e"),
        agent("f", "starting"),
        agent("g", "starting") | {"reason": "not placed: no suitable node"},
    ]
    order = [a["name"] for a in problems_first(fleet)]
    # crash loops, failures, then in each phase a reason or an error first, then by name
    assert order == ["c", "d", "g", "f", "b", "a", "e"]
    # each agent takes its row, and one with a problem a line explaining it too
    assert fitting(problems_first(fleet), 6) == problems_first(fleet)[:3]
    assert fitting(fleet, 2) == [fleet[0]]  # b's row and its line would be 3
    assert fitting(fleet, 100) == fleet


def test_a_platform_the_relay_cannot_reach_heads_the_dashboard():
    from rich.console import Console

    from orchestrator.cli.format import format_dashboard

    summary = {
        "instance": "prod",
        "runtime": "docker",
        "market": {"hours": "always", "open": True, "next_change": None},
        "paused": False,
        "desired": 1,
        "running": 1,
        "by_phase": {"running": 1},
        "restarts_last_hour": 0,
        "market_day": "2026-12-07",
        "orders_today": 0,
        "pnl": 0.0,
        "pnl_today": 0.0,
        "feeds": {},
        "llm_today": {"cost_usd": 0.0},
    }

    def head(platform: dict | None) -> str:
        console = Console(width=200, record=True)
        console.print(format_dashboard(summary | {"platform": platform}, [], []))
        return console.export_text().splitlines()[1]

    down = {"reachable": False, "down_since": "2026-12-07T14:02:03+00:00", "failed_calls": 4}
    assert "PLATFORM UNREACHABLE since 14:02:03 UTC" in head(down)
    for fine in (None, {"reachable": True, "down_since": None, "failed_calls": 0}):
        assert "PLATFORM" not in head(fine)  # none configured, or it answers
