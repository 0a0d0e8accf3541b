"""Schedules: ramp plans that grow or shrink the fleet, and the daily report.

The plans' arithmetic is pure; the rest runs a real `fleet up` daemon (process runtime),
the real `fleet` CLI, and a webhook on 127.0.0.1, and restarts the daemon mid-plan.
"""

import asyncio
import json
import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from orchestrator.operations.commands import Commands
from orchestrator.operations.scheduler import FleetScheduler
from orchestrator.operations.schedules import RampSpec, ReportSpec, add_ramp, add_report
from orchestrator.state.health import StoreHealth
from orchestrator.state.schedules import ScheduleBook
from orchestrator.tools.harness import serve, wait_until
from orchestrator.tools.scripted import ScriptedApp

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WEEK = 7 * 86_400


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_ramp_asks_for_one_more_step_each_period_and_stops_at_its_target():
    grow = RampSpec(to=50, step=5, every_seconds=WEEK, start=10)
    assert grow.target(T0, at(WEEK - 1)) == (0, 10)
    assert grow.target(T0, at(WEEK)) == (1, 15)
    assert grow.target(T0, at(20 * WEEK)) == (20, 50)  # capped at the target
    shrink = RampSpec(to=2, step=3, every_seconds=60, start=10)
    assert [shrink.target(T0, at(60 * k))[1] for k in range(5)] == [10, 7, 4, 2, 2]


def test_a_ramp_step_never_undoes_an_operator_who_went_further():
    grow = RampSpec(to=50, step=5, every_seconds=WEEK, start=10)
    assert grow.wanted(T0, at(WEEK), live=10) == 15
    assert grow.wanted(T0, at(WEEK), live=15) is None  # a second run of the same step
    assert grow.wanted(T0, at(WEEK), live=30) is None  # scaled up by hand: left alone
    assert grow.wanted(T0, at(3 * WEEK), live=12) == 25  # missed steps: caught up at once
    shrink = RampSpec(to=0, step=5, every_seconds=60, start=10)
    assert shrink.wanted(T0, at(60), live=3) is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"at": "25:00"}, "'25:00' is not a time of day like 16:30"),
        ({"at": "noon"}, "is not a time of day"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_a_report_schedule_rejects_a_bad_time_or_zone(fields, problem):
    with pytest.raises(ValidationError, match=problem):
        ReportSpec(**fields)


def test_a_report_is_due_at_its_local_time():
    spec = ReportSpec(at="16:30", timezone="America/New_York")
    # 16:30 in New York is 21:30 UTC in November.
    assert spec.last_due(datetime(2026, 11, 23, 21, 29, tzinfo=UTC)) == datetime(
        2026, 11, 22, 21, 30, tzinfo=UTC
    )
    assert spec.last_due(datetime(2026, 11, 23, 21, 30, tzinfo=UTC)) == datetime(
        2026, 11, 23, 21, 30, tzinfo=UTC
    )
    assert spec.day(datetime(2026, 11, 24, 2, 0, tzinfo=UTC)) == "2026-11-23"


def test_the_store_keeps_one_running_ramp_and_one_report_a_day(store):
    book = ScheduleBook(store)
    assert [s.id for s in book.all()] == ["daily-report"]  # scheduled from the start
    plan = RampSpec(to=5, step=1, every_seconds=60, start=1)
    first, created = add_ramp(book, plan, T0)
    again, created_again = add_ramp(book, plan.model_copy(update={"start": 2}), T0)
    assert created and not created_again and again.id == first.id  # a retry, not a second
    with pytest.raises(Exception, match=f"ramp {first.id} is still running"):
        add_ramp(book, RampSpec(to=9, step=1, every_seconds=60, start=1), T0)
    book.record_run(first.id, T0, "step 4", done=True)
    other, created = add_ramp(book, RampSpec(to=9, step=1, every_seconds=60, start=5), T0)
    assert created and other.id != first.id  # the first one is done

    assert book.save_report("daily-report:2026-11-23", {"n": 1}, T0, "text")
    assert not book.save_report("daily-report:2026-11-23", {"n": 2}, T0, "text")
    assert book.reports() == [{"n": 2}]
    assert [a.kind for a in store.alerts()] == ["report"]  # sent once


def live(daemon) -> list[dict]:
    return [a for a in daemon.agents() if a["phase"] not in ("retiring", "retired", "failed")]


def schedules(daemon) -> dict[str, dict]:
    result = daemon.fleet("schedule", "ls", "--json")
    assert result.returncode == 0, result.stderr
    return {s["id"]: s for s in json.loads(result.stdout)}


def finished(daemon, schedule_id: str) -> dict:
    """The schedule, once it is done."""

    def done() -> dict | None:
        plan = schedules(daemon)[schedule_id]
        return plan if plan["done_at"] else None

    return wait_until(done, f"{schedule_id} to finish", timeout=30)


def test_a_ramp_grows_the_fleet_step_by_step_then_finishes(make_daemon):
    daemon = make_daemon()
    assert daemon.fleet("spawn", "1").returncode == 0
    made = daemon.fleet("schedule", "ramp", "--to", "3", "--step", "1", "--every", "2s")
    assert made.returncode == 0, made.stderr
    assert "1 → 3 agents, 1 every 2s" in made.stdout
    ramp_id = made.stdout.split()[1].rstrip(":")

    wait_until(lambda: len(live(daemon)) == 3, "the ramp to reach 3 agents", timeout=30)
    plan = wait_until(
        lambda: schedules(daemon)[ramp_id]["done_at"] and schedules(daemon)[ramp_id], "done"
    )
    assert plan["runs"] == 2 and plan["last_result"].startswith("step 2: scaled to 3")
    time.sleep(3)  # a finished plan spawns nothing more
    assert len(live(daemon)) == 3
    assert "done" in daemon.fleet("schedule", "ls").stdout


def test_a_catch_up_and_a_step_that_fire_together_make_one_run(store):
    """A daemon that starts late runs a ramp's missed step at once, and the ramp's own
    trigger may fire while that run still scales the fleet: the second run waits, then
    finds the plan done."""
    book = ScheduleBook(store)
    ramp, _ = add_ramp(book, RampSpec(to=5, step=2, every_seconds=3, start=0), T0)
    woken, release = threading.Event(), threading.Event()

    def wake() -> None:  # the first run's spawn wakes the reconciler: hold it there
        woken.set()
        release.wait(10)

    commands = Commands(store, b"k" * 32, wake, lambda: at(10), flatten_deadline=None)
    scheduler = FleetScheduler(
        book, commands, lambda *_: {}, lambda: at(10), StoreHealth(lambda: at(10))
    )
    runs = [threading.Thread(target=scheduler.run, args=[ramp.id]) for _ in range(2)]
    runs[0].start()
    assert woken.wait(10)
    runs[1].start()
    runs[1].join(0.5)  # time to reach the run: it must wait there
    release.set()
    for run in runs:
        run.join(10)
    done = book.get(ramp.id)
    assert done.runs == 1 and done.done_at is not None
    assert len(store.live()) == 5


def test_a_run_the_store_refuses_is_said_once_and_made_when_it_works_again(store, caplog):
    """The daily report comes due while the database fails (here, its reports table is
    gone): the failure is the store's health, logged once without a traceback, and the
    run is tried again until the store takes it; then it is made once."""
    from orchestrator.operations.reports import build_report
    from orchestrator.state.usage import UsageLedger

    def now() -> datetime:
        return datetime.now(UTC)

    caplog.set_level(logging.INFO)
    book, health = ScheduleBook(store), StoreHealth(now)
    daily, _ = add_report(book, ReportSpec(at="00:00", timezone="UTC"), now() - timedelta(days=2))

    def report(title: str, since: datetime, until: datetime) -> dict:
        def no_orders():
            return "2026-01-07", {}

        return build_report(store, UsageLedger(store), [], "i", no_orders, title, since, until)

    commands = Commands(store, b"k" * 32, lambda: None, now, flatten_deadline=None)
    scheduler = FleetScheduler(book, commands, report, now, health, retry_seconds=0.2)

    def rename(table: str, to: str) -> None:
        with store.engine.begin() as connection:
            connection.execute(sa.text(f"ALTER TABLE {table} RENAME TO {to}"))

    async def until(condition, what: str) -> None:  # the scheduler runs on this loop
        for _ in range(100):
            if condition():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what}: not within 10 s")

    async def outage() -> None:
        rename("reports", "reports_away")
        await scheduler.start()  # the report missed yesterday runs at once, and fails
        try:
            await until(health.problems, "the scheduler's failure")
            await asyncio.sleep(1)  # several retries, all refused
            assert book.get(daily.id).runs == 0
            assert health.problems()[0].startswith("store failing for the scheduler for ")
            rename("reports_away", "reports")
            # said by the run that worked, once it is done
            await until(lambda: not health.problems(), "the run made")
        finally:
            scheduler.shutdown()

    asyncio.run(outage())
    assert book.get(daily.id).runs == 1 and health.problems() == []
    assert book.get(daily.id).last_result.startswith("report for ")
    failing = [r for r in caplog.records if r.getMessage().startswith("store failing for")]
    assert len(failing) == 1 and "the scheduler" in failing[0].getMessage()
    assert "store works again for the scheduler" in caplog.text
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_a_ramp_missed_while_the_daemon_was_down_catches_up_once(make_daemon):
    daemon = make_daemon()
    daemon.fleet("spawn", "1")
    made = daemon.fleet("schedule", "ramp", "--to", "5", "--step", "2", "--every", "3s")
    ramp_id = made.stdout.split()[1].rstrip(":")
    daemon.stop()
    # On a loaded machine a first step may run before the stop: count from the store.
    with sqlite3.connect(daemon.state_dir / "fleet.db") as db:
        (before,) = db.execute("SELECT runs FROM schedules WHERE id = ?", (ramp_id,)).fetchone()
    time.sleep(7)  # two steps are due meanwhile
    daemon.start()
    wait_until(lambda: len(live(daemon)) == 5, "the catch-up to 5 agents", timeout=30)
    plan = wait_until(
        lambda: schedules(daemon)[ramp_id]["done_at"] and schedules(daemon)[ramp_id], "done"
    )
    assert plan["runs"] == before + 1  # one catch-up run, not one per missed step
    assert "missed a run while the daemon was down" in daemon.log_path.read_text()
    assert len(daemon.agents()) == 5  # nobody spawned twice


def test_removing_a_ramp_stops_it_and_bad_input_is_refused(make_daemon):
    daemon = make_daemon()
    made = daemon.fleet("schedule", "ramp", "--to", "4", "--step", "1", "--every", "1h")
    ramp_id = made.stdout.split()[1].rstrip(":")
    conflict = daemon.fleet("schedule", "ramp", "--to", "9", "--step", "1", "--every", "1h")
    assert conflict.returncode == 1
    assert f"ramp {ramp_id} is still running" in conflict.stderr

    removed = daemon.fleet("schedule", "rm", ramp_id)
    assert removed.returncode == 0 and f"removed {ramp_id}" in removed.stdout
    assert ramp_id not in schedules(daemon)
    assert daemon.agents() == []

    for args, code, message in [
        (("schedule", "rm", ramp_id), 1, f"no schedule {ramp_id!r}"),
        (
            ("schedule", "ramp", "--to", "4", "--step", "1", "--every", "0s"),
            2,
            "'0s' is not a span",
        ),
        (
            ("schedule", "ramp", "--to", "4", "--step", "1", "--every", "7x"),
            2,
            "'7x' is not a span",
        ),
        (  # was the API's field: "every_seconds: Input should be less than or equal to …"
            ("schedule", "ramp", "--to", "4", "--step", "1", "--every", "53w"),
            2,
            "Invalid value for '--every': '53w' is longer than 366d",
        ),
        (("schedule", "ramp", "--to", "-1", "--step", "1", "--every", "1d"), 2, "--to"),
        (("schedule", "ramp", "--to", "0", "--step", "1", "--every", "1d"), 2, "already has 0"),
        (("schedule", "report", "--at", "24:61"), 2, "error: at: '24:61' is not a time of day"),
        (("schedule", "report", "--tz", "Nowhere/City"), 2, "unknown time zone"),
        (
            (
                "schedule",
                "ramp",
                "--to",
                "4",
                "--step",
                "1",
                "--every",
                "1d",
                "--population",
                "nope",
            ),
            2,
            "nope",
        ),
    ]:
        result = daemon.fleet(*args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert "Value error" not in result.stderr  # pydantic's wording is not the operator's
    assert list(schedules(daemon)) == ["daily-report"]


def test_the_daily_report_is_stored_and_sent_once(make_daemon):
    hook = ScriptedApp().on("/hook", (200, {"ok": True}, {}))
    with serve(hook) as url:
        daemon = make_daemon(FLEET_ALERT_WEBHOOK_URL=f"{url}/hook")
        # the one scheduled from the start would send its own at 16:30 New York time
        assert daemon.fleet("schedule", "rm", "daily-report").returncode == 0
        daemon.fleet("spawn", "2", "--wait")
        # far enough ahead that a CLI call on a loaded CI machine (seconds) cannot pass it:
        # a time already gone today is, rightly, armed for tomorrow
        soon = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%H:%M:%S")
        made = daemon.fleet("schedule", "report", "--at", soon, "--tz", "UTC")
        shown = soon.removesuffix(":00")  # a whole minute is written 16:30, not 16:30:00
        assert made.returncode == 0 and f"daily at {shown} UTC" in made.stdout, made.stderr

        def sent() -> list[dict]:
            bodies = [json.loads(s.body) for s in hook.seen if s.path == "/hook"]
            return [b for b in bodies if "daily report" in b["text"]]

        (message,) = wait_until(sent, "the report at the webhook", timeout=60)
        assert message["text"].startswith(f"[agent-fleet {daemon.instance}] daily report ")
        assert "agents: 2 live, 2 running" in message["text"]
        shown = daemon.fleet("report", "--json")
        report = json.loads(shown.stdout)
        assert report["title"].startswith("daily report ") and report["agents"]["live"] == 2
        assert sum(row["agents"] for row in report["by_strategy"].values()) == 2
        assert "orders today" in daemon.fleet("report").stdout

        daemon.stop()  # a restart after the run must not send it again
        daemon.start()
        time.sleep(3)
        assert len(sent()) == 1

        now = daemon.fleet("report", "--now")
        assert now.returncode == 0 and now.stdout.startswith("fleet report: since")
        assert len(sent()) == 1  # a report on request is shown, not sent


def test_the_report_counts_pnl_from_the_window_start_by_strategy(store):
    from orchestrator.lifecycle import Phase
    from orchestrator.operations.reports import build_report
    from orchestrator.operations.summaries import format_report
    from orchestrator.state.orders import OrderBook, PlacedOrder
    from orchestrator.state.usage import UsageLedger

    now = T0 + timedelta(days=2)
    since = now - timedelta(hours=24)
    (old, new), _ = store.spawn(
        "key-report",
        [{"name": "a", "strategy": "contrarian"}, {"name": "b", "strategy": "news_momentum"}],
        lambda agent_id: f"hash-{agent_id}",
        T0,
    )
    every = timedelta(minutes=1)
    for agent_id, moment, equity in [
        (old.id, T0, 100_000.0),
        (old.id, since - timedelta(hours=1), 101_000.0),  # its equity when the window opens
        (old.id, now, 103_000.0),
        (new.id, since + timedelta(hours=2), 50_000.0),  # started inside the window
        (new.id, now, 49_000.0),
    ]:
        store.heartbeat(agent_id, 1, None, moment, every, equity=equity, orders_today=3)
    book = OrderBook(store)
    for n, (agent_id, day) in enumerate(
        [
            (old.id, "2026-01-07"),
            (old.id, "2026-01-07"),
            (new.id, "2026-01-07"),
            (new.id, "2026-01-06"),
        ]
    ):
        placed = PlacedOrder(f"c{n}", f"o{n}", "AAPL", "buy", "filled", 1.0, 100.0, None, now, day)
        book.record(agent_id, placed, "a reason", now)
    book.record(new.id, placed, "the same order, seen again", now)  # a replay: no new row
    usage = UsageLedger(store)
    usage.charge_llm(new.id, now.strftime("%Y-%m-%d"), 1000, 200, 0.25)
    usage.count_provider_call("simulated", now.strftime("%Y-%m-%d"))

    def orders_today():
        return "2026-01-07", book.orders_on("2026-01-07")

    report = build_report(
        store, usage, ["simulated"], "inst", orders_today, "daily report", since, now
    )
    assert report["by_strategy"]["contrarian"]["pnl"] == 2_000.0
    assert report["by_strategy"]["news_momentum"]["pnl"] == -1_000.0
    assert (report["pnl"], report["orders_today"], report["market_day"]) == (
        1_000.0,
        3,
        "2026-01-07",
    )
    assert report["by_strategy"]["contrarian"]["orders_today"] == 2
    assert report["spend"]["llm_usd"] == 0.25
    assert report["spend"]["provider_calls"] == {"simulated": 1}  # the README's promise
    store.transition(new.id, "retired", "retired", now, phase=Phase.RETIRED)  # counted apart
    again = build_report(store, usage, ["simulated"], "inst", orders_today, "r", since, now)
    row = again["by_strategy"]["news_momentum"]
    assert (row["agents"], row["retired"], row["pnl"]) == (0, 1, -1_000.0)
    assert again["agents"]["live"] == 1
    text = format_report(again)  # counted in words: one of a kind is not plural
    assert "  contrarian: 1 agent, 2 orders, P&L +$2,000.00" in text
    assert "  news_momentum: 0 agents (+1 retired), 1 order, P&L -$1,000.00" in text
    assert text.endswith("; simulated 1 call")
