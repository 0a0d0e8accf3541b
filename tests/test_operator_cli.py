"""The operator's CLI against a real daemon (process runtime) and the sandbox platform:
ls filters and columns, show, logs, spawn --wait, config, doctor, and bad input."""

import base64
import json
import socket
import subprocess
import threading

import pytest

from orchestrator import keys
from orchestrator.tools.harness import FLEET, free_port, serve, wait_until
from sandbox.app import create_sandbox_app
from tests.conftest import CONTROLLER_KEY, cli, sandbox_config

SECRET_KEY = "sk-config-secret-7f3a"


def test_ls_filters_show_and_logs(make_daemon, tmp_path):
    with serve(create_sandbox_app(sandbox_config(f"sqlite:///{tmp_path / 'p.db'}"))) as url:
        daemon = make_daemon(FLEET_PLATFORM_URL=url, FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY)
        result = daemon.fleet("spawn", "3", "--seed", "4", "--wait", "--timeout", "90")
        assert result.returncode == 0, result.stderr
        assert "3/3" in result.stdout  # the progress bar's last state
        agents = daemon.wait_for(
            lambda now: all(a["equity"] is not None for a in now), "account state"
        )
        table = daemon.fleet("ls").stdout
        for column in ("UPTIME", "RESTARTS", "HEARTBEAT", "EQUITY", "P&L", "TODAY"):
            assert column in table
        first = agents[0]
        assert first["pnl"] == 0 and first["starting_equity"] == first["equity"]
        assert first["uptime_seconds"] > 0 and first["orders_today"] is not None

        strategy = first["strategy"]
        only = json.loads(daemon.fleet("ls", "--json", "--strategy", strategy).stdout)
        assert only and {a["strategy"] for a in only} == {strategy}
        assert json.loads(daemon.fleet("ls", "--json", "--phase", "retired").stdout) == []
        both = daemon.fleet("ls", "--json", "--phase", "running", "--phase", "retired")
        assert len(json.loads(both.stdout)) == 3

        shown = daemon.fleet("show", first["id"][:6])
        assert shown.returncode == 0, shown.stderr
        for part in (first["name"], "personality", "risk_tolerance", "recent orders", "timeline"):
            assert part in shown.stdout
        detail = json.loads(daemon.fleet("show", first["name"], "--json").stdout)
        assert detail["equity_history"] and isinstance(detail["orders"], list)
        assert isinstance(detail["positions"], list)
        assert [e["kind"] for e in detail["events"]][:3] == [
            "created",
            "provisioning",
            "account_created",
        ]

        everything = daemon.fleet("logs", first["name"])
        assert everything.returncode == 0, everything.stderr
        assert "bootstrapped" in everything.stdout
        last = daemon.fleet("logs", first["name"], "--tail", "1").stdout
        assert last.count("\n") == 1
        assert last in daemon.fleet("logs", first["name"]).stdout

        follower = subprocess.Popen(
            [*FLEET, "logs", first["name"], "--follow", "--tail", "1"],
            env=daemon.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(follower.stdout), daemon=True)
        reader.start()
        try:
            wait_until(lambda: lines, "the last line, before following")
            daemon.fleet("retire", first["name"])  # the agent logs its exit while we follow
            # told by its heartbeat reply, or stopped by SIGTERM: whichever comes first
            exits = ("retired by the orchestrator", "stopping on signal")
            wait_until(lambda: any(e in line for line in lines for e in exits), "the agent's exit")
        finally:
            follower.terminate()
            follower.wait(10)

        # a shell with the daemon's state dir and port but not its platform (as beside a
        # `fleet demo`): doctor says the daemon's own platform answers
        assert _platform_check(daemon, tmp_path).startswith("ok   platform       the daemon's")
    # the platform gone: the agents' calls through the relay fail, and doctor says since when
    wait_until(lambda: _platform_check(daemon, tmp_path).startswith("FAIL"), "the platform down")
    assert "unreachable since" in _platform_check(daemon, tmp_path)


def _platform_check(daemon, tmp_path) -> str:
    """The platform line of `fleet doctor` in a shell with none configured."""
    env = {"FLEET_STATE_DIR": str(daemon.state_dir), "FLEET_PORT": str(daemon.port)}
    shown = cli("doctor", cwd=tmp_path, **env).stdout.splitlines()
    (line,) = [line for line in shown if line.split()[1:2] == ["platform"]]
    return line


def test_bad_agent_references_and_arguments_are_one_line_errors(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "12")
    agents = daemon.wait_for(lambda a: len(a) == 12, "twelve agents")
    for command in (["show", "no-such-agent"], ["logs", "no-such-agent"]):
        result = daemon.fleet(*command)
        assert result.returncode == 1
        assert result.stderr == "error: no agent 'no-such-agent'\n"
    # twelve random ids: some pair shares its first hex digit
    firsts = [a["id"][0] for a in agents]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    result = daemon.fleet("show", shared)
    assert result.returncode == 1 and "matches several agents" in result.stderr
    result = daemon.fleet("logs", agents[0]["name"], "--tail", "-5")
    assert result.returncode == 2
    assert "Invalid value for '--tail'" in result.stderr and "Traceback" not in result.stderr
    result = daemon.fleet("ls", "--phase", "sleeping")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # a value of another type is refused, not converted: `true` is not a fleet of one
    for body in ({"size": True}, {"size": "3"}, {"size": 3.0}, {"size": 12, "seed": "7"}):
        refused = daemon.api("PUT", "/v1/fleet/desired", json=body)
        assert refused.status_code == 422, body
        assert refused.json()["error"]["message"].endswith(": Input should be a valid integer")
    assert len(daemon.agents()) == 12
    # a forged reference is not a path anywhere
    response = daemon.api("GET", "/v1/agents/..%2F..%2Fetc%2Fpasswd")
    assert response.status_code == 404 and "error" in response.json()
    given = "given: name one by"
    for command, code, refused in [
        (["show", "../../etc/passwd"], 1, "no agent '../../etc/passwd'"),
        (["why", "../../etc/passwd"], 1, "no order '../../etc/passwd' in the fleet's order book"),
        (["schedule", "rm", "a/../b"], 1, "no schedule 'a/../b' (see `fleet schedule ls`)"),
        # no reference at all is a bad argument (exit 2), as is any the daemon refuses (422)
        (["show", ""], 2, f"no agent {given} its name, id or a unique id prefix"),
        (["logs", " "], 2, f"no agent {given} its name, id or a unique id prefix"),
        (["retire", ""], 2, f"no agent {given} its name, id or a unique id prefix"),
        (["why", ""], 2, f"no order {given} its platform or client order id"),
        (["schedule", "rm", " "], 2, f"no schedule {given} its id (`fleet schedule ls`)"),
        # a page pasted by mistake comes back as one line
        (["show", "x" * 3000], 1, f"no agent '{'x' * 60}'… (3,000 characters)"),
        (
            ["why", "y" * 40_000],
            1,
            f"no order '{'y' * 60}'… (40,000 characters) in the fleet's order book",
        ),
    ]:
        result = daemon.fleet(*command)
        assert (result.returncode, result.stderr) == (code, f"error: {refused}\n"), command


def test_config_masks_secrets_and_a_bad_env_value_names_the_setting(tmp_path):
    shown = cli(
        "config",
        cwd=tmp_path,
        FLEET_STATE_DIR=str(tmp_path / "state"),
        FLEET_ANTHROPIC_API_KEY=SECRET_KEY,
        FLEET_DATABASE_URL="postgresql+psycopg://fleet:pw-9c1e@127.0.0.1:1/fleet",
    )
    assert shown.returncode == 0, shown.stderr
    assert "FLEET_ANTHROPIC_API_KEY=********" in shown.stdout
    assert "FLEET_DATABASE_URL=postgresql+psycopg://fleet:***@127.0.0.1:1/fleet" in shown.stdout
    assert SECRET_KEY not in shown.stdout and "pw-9c1e" not in shown.stdout
    values = json.loads(cli("config", "--json", cwd=tmp_path, FLEET_PORT="9001").stdout)
    assert values["FLEET_PORT"] == 9001

    for line, setting in [
        ("FLEET_PORT=eighty", "FLEET_PORT"),
        ("FLEET_RUNTIME=kubernetes", "FLEET_RUNTIME"),
        ("FLEET_MARKET_ANCHOR=2026-05-01T09:30:00", "FLEET_MARKET_ANCHOR"),
        ("FLEET_AGENT_CYCLE_SECONDS=inf", "FLEET_AGENT_CYCLE_SECONDS"),  # it would never beat
        ("FLEET_DATABASE_URL=mysql://fleet:pw-9c1e@db/fleet", "FLEET_DATABASE_URL"),
        ("FLEET_DATABASE_URL=fleet.db", "FLEET_DATABASE_URL"),
    ]:
        (tmp_path / ".env").write_text(line + "\n")
        for command in ("config", "up", "ls"):
            bad = cli(command, cwd=tmp_path)
            assert bad.returncode == 2, (line, command, bad.stderr)
            assert bad.stderr.startswith(f"error: invalid settings: {setting}:"), bad.stderr
            assert bad.stderr.count("\n") == 1 and "pw-9c1e" not in bad.stderr

    (tmp_path / ".env").write_bytes(b"FLEET_PORT=9000\n\xff\n")  # was a traceback
    for command in ("config", "up", "ls"):
        bad = cli(command, cwd=tmp_path)
        assert (bad.returncode, bad.stderr) == (
            2,
            "error: invalid settings: .env is not UTF-8 text (byte 16)\n",
        )

    # a sped-up market anchored long ago would run millennia ahead: refused at start
    (tmp_path / ".env").write_text("FLEET_MARKET_TIME_SCALE=4320\n")
    for command in ("config", "up", "sandbox"):
        bad = cli(command, cwd=tmp_path, FLEET_CONTROLLER_API_KEY="k")
        assert bad.returncode == 2, (command, bad.stderr)
        assert "FLEET_MARKET_TIME_SCALE=4320 from FLEET_MARKET_ANCHOR=" in bad.stderr
        assert "years away" in bad.stderr and bad.stderr.count("\n") == 1

    # an OCI runtime for agents cannot reach Swarm's services: refused, not ignored
    (tmp_path / ".env").write_text("FLEET_RUNTIME=swarm\nFLEET_AGENT_OCI_RUNTIME=crun\n")
    for command in ("config", "up"):
        bad = cli(command, cwd=tmp_path)
        assert bad.returncode == 2, (command, bad.stderr)
        assert bad.stderr == (
            "error: invalid settings: FLEET_AGENT_OCI_RUNTIME does not reach Swarm services, "
            "which run on each node's default runtime: set that instead (dockerd "
            "--default-runtime)\n"
        )


def test_up_with_an_unreachable_store_says_so_in_one_line(tmp_path):
    result = cli(
        "up",
        cwd=tmp_path,
        FLEET_STATE_DIR=str(tmp_path / "state"),
        FLEET_DATABASE_URL="postgresql+psycopg://fleet:pw-9c1e@127.0.0.1:1/fleet",
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: cannot open the store at postgresql+psycopg://fleet:***@"
    )
    assert "Traceback" not in result.stderr and "pw-9c1e" not in result.stderr


def test_up_where_its_state_dir_cannot_be_made_says_so_in_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = cli("up", cwd=tmp_path, FLEET_STATE_DIR=str(tmp_path / "a-file" / "state"))
    assert result.returncode == 1
    assert (
        result.stderr == f"error: cannot start: Not a directory: {tmp_path / 'a-file' / 'state'}\n"
    )


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("fleet.key", b"", "is empty: restore it from a backup"),
        ("fleet.key", b"garbage!!", "is not a 32-byte key in base64: restore it"),
        ("fleet.key", base64.b64encode(b"short"), "is not a 32-byte key in base64: restore it"),
        ("operator-token", b" \n", "is empty: remove it, and the next `fleet up` makes a new one"),
        ("operator-token", b"\xff\xfetoken", "is not a token (not ASCII text): remove it"),
    ],
)
def test_up_refuses_an_empty_or_damaged_secret_file(tmp_path, name, content, said):
    # an empty key made every agent's token derivable; an empty token opened the operator API
    state = tmp_path / "state"
    state.mkdir()
    (state / name).write_bytes(content)
    result = cli(
        "up",
        cwd=tmp_path,
        FLEET_STATE_DIR=str(state),
        FLEET_RUNTIME="process",
        FLEET_PORT=str(free_port()),
    )
    assert result.returncode == 1 and result.stderr.startswith(f"error: {state / name} {said}")
    assert result.stderr.count("\n") == 1
    assert not keys.tokens_equal("", "")  # and were one empty, it would still open nothing
    if name == "operator-token":  # the CLI reads it too
        listed = cli("ls", cwd=tmp_path, FLEET_STATE_DIR=str(state))
        assert listed.returncode == 1 and listed.stderr.startswith(f"error: {state / name} ")
        doctor = cli("doctor", cwd=tmp_path, FLEET_STATE_DIR=str(state)).stdout.splitlines()
        assert any(line.startswith("FAIL") and f"{state / name} {said}" in line for line in doctor)


def test_a_token_no_header_can_carry_is_one_line_at_the_cli(tmp_path):
    result = cli("ls", cwd=tmp_path, FLEET_OPERATOR_TOKEN="pässword-" * 4)
    assert (result.returncode, result.stderr) == (
        1,
        "error: FLEET_OPERATOR_TOKEN is not ASCII: no header can carry it\n",
    )


def test_up_without_its_engine_says_so_in_one_line(tmp_path):
    result = cli(
        "up",
        cwd=tmp_path,
        FLEET_STATE_DIR=str(tmp_path / "state"),
        FLEET_RUNTIME="docker",
        DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Docker engine not reachable"), line


def test_doctor_reports_each_check_with_a_fix(make_daemon, tmp_path):
    daemon = make_daemon(  # no key: one failing check; and a misspelt setting
        FLEET_NEWS_PROVIDER="newsapi", FLEET_RECONCILE_INTERVAL="5"
    )
    result = daemon.fleet("doctor")
    lines = result.stdout.splitlines()
    names = [line.split()[1] for line in lines]
    for name in ("daemon", "settings", "store", "engine", "platform", "data:", "disk", "clock"):
        assert name in names, result.stdout
    assert "warn platform       none configured: agents get no accounts" in result.stdout
    ignored = "FLEET_RECONCILE_INTERVAL (did you mean FLEET_RECONCILE_INTERVAL_SECONDS?)"
    assert any(line.startswith("warn") and ignored in line for line in lines), result.stdout
    assert f"warning: {ignored} is not a setting" in daemon.log_path.read_text()
    assert any(line.startswith("ok") and "daemon" in line for line in lines)
    assert any(
        line.startswith("FAIL") and "newsapi" in line and "FLEET_NEWSAPI_KEY" in line
        for line in lines
    )
    assert result.returncode == 1 and result.stderr == "error: 1 check(s) failed\n"
    assert any(line.startswith("ok") and "operator token" in line for line in lines)
    assert any(
        line.startswith("ok") and "store" in line and "MiB" in line and "last 24 h" in line
        for line in lines
    ), result.stdout

    (tmp_path / ".env").write_text("FLEET_AGENT_CYCLE=3\n")  # .env's names are read too
    weak = cli(
        "doctor",
        cwd=tmp_path,
        FLEET_STATE_DIR=str(daemon.state_dir),
        FLEET_OPERATOR_TOKEN="hunter2",
    )
    assert any(
        line.startswith("warn") and "operator token" in line and "guessable" in line
        for line in weak.stdout.splitlines()
    ), weak.stdout
    assert any(
        line.startswith("warn") and "ignored: FLEET_AGENT_CYCLE (did you mean" in line
        for line in weak.stdout.splitlines()
    ), weak.stdout


def test_a_setting_name_or_value_holding_a_terminal_sequence_is_shown_escaped(tmp_path):
    (tmp_path / ".env").write_bytes(b"FLEET_X\x1b]0;OWNED\x07=1\nFLEET_AGENT_IMAGE=img\x1b[2J\n")
    taken = socket.socket()  # `fleet up` warns, then stops at its port
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    state, port = str(tmp_path / "state"), str(taken.getsockname()[1])
    try:
        shown = {
            command: cli(command, cwd=tmp_path, FLEET_STATE_DIR=state, FLEET_PORT=port)
            for command in ("config", "doctor", "up")
        }
    finally:
        taken.close()
    for command, result in shown.items():
        printed = result.stdout + result.stderr
        assert "\x1b" not in printed and "\x07" not in printed, (command, printed)
    assert "FLEET_AGENT_IMAGE=img\\x1b[2J" in shown["config"].stdout
    assert "ignored: FLEET_X\\x1b]0;OWNED\\x07" in shown["doctor"].stdout
    assert "warning: FLEET_X\\x1b]0;OWNED\\x07 is not a setting" in shown["up"].stderr


def test_image_build_refuses_a_tag_the_engine_would_before_building(tmp_path):
    # docker-py refused it after the wheelhouse was made, and the CLI showed its traceback
    for tag in ("Agent:Latest", "agent\x1b]0;owned\x07"):
        for target in ("agent", "orchestrator"):
            result = cli("image", "build", "--target", target, "--tag", tag, cwd=tmp_path)
            assert (result.returncode, result.stderr) == (
                1,
                f"error: {tag!r} is not an image name (name[:tag], lowercase)\n",
            )


def test_ls_says_when_paused_or_when_nothing_matches_and_show_suggests_names(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "2", "--wait")
    name = daemon.agents()[0]["name"]

    nothing = daemon.fleet("ls", "--phase", "crashloop")
    assert nothing.returncode == 0 and nothing.stdout == (
        "no agents match: crashloop (see `fleet ls` for all)\n"
    )
    assert "PAUSED" not in daemon.fleet("ls").stdout
    daemon.fleet("pause")
    paused = daemon.fleet("ls")
    assert paused.stdout.startswith(" PAUSED  agents submit no orders until `fleet resume`")
    assert name in paused.stdout

    typo = name[:-1]  # the last character of its id part lost
    result = daemon.fleet("show", typo)
    assert result.returncode == 1
    assert result.stderr == f"error: no agent {typo!r}; did you mean {name}?\n"
    words = name.rsplit("-", 1)[0]  # the personality's name without the id part
    suggested = daemon.fleet("show", words).stderr
    assert "did you mean " in suggested and name in suggested


def test_retired_agents_leave_ls_unless_asked_for(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "2", "--wait")
    gone, kept = daemon.agents()
    assert daemon.fleet("retire", gone["name"]).returncode == 0
    listed = daemon.fleet("ls").stdout
    assert kept["name"] in listed and gone["name"] not in listed
    assert [a["id"] for a in json.loads(daemon.fleet("ls", "--json").stdout)] == [kept["id"]]
    everyone = daemon.fleet("ls", "--all").stdout
    assert gone["name"] in everyone and "retired" in everyone
    retired = json.loads(daemon.fleet("ls", "--json", "--phase", "retired").stdout)
    assert [a["id"] for a in retired] == [gone["id"]]


def test_doctor_flags_a_platform_url_without_a_scheme(tmp_path):
    from orchestrator.tools.harness import fleet_env

    env = fleet_env(
        FLEET_STATE_DIR=str(tmp_path / "state"),
        FLEET_PLATFORM_URL="localhost:9000",
        FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
    )
    result = subprocess.run([*FLEET, "doctor"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: invalid settings: FLEET_PLATFORM_URL: 'localhost:9000' has no scheme: "
        "write http://… or https://…"
    )


def test_a_second_shell_without_the_token_is_told_where_it_is(make_daemon, tmp_path):
    from orchestrator.tools.harness import fleet_env

    daemon = make_daemon()
    elsewhere = tmp_path / "another-state-dir"
    env = fleet_env(FLEET_STATE_DIR=str(elsewhere), FLEET_PORT=str(daemon.port))
    result = subprocess.run([*FLEET, "ls"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        f"error: no operator token (no FLEET_OPERATOR_TOKEN, and no operator-token file in "
        f"{elsewhere}): set FLEET_STATE_DIR to the daemon's state dir"
    )


def test_version_and_whole_help_summaries():
    version = subprocess.run([*FLEET, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("fleet, version ")
    shown = subprocess.run([*FLEET, "--help"], capture_output=True, text=True).stdout
    commands = shown.split("Commands:", 1)[1]
    assert "..." not in commands  # no summary cut mid-sentence
    assert "personality, follows, positions, orders and timeline." in " ".join(commands.split())
