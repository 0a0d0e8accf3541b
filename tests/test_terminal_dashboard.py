"""`fleet dashboard` driven in a real pseudo-terminal (tmux), its screen read back."""

import shlex

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
