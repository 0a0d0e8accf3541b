"""Retention on SQLite and PostgreSQL: past the window, timelines and delivered alerts
go, equity samples thin to one a day; recent rows, orders and undelivered alerts stay."""

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from orchestrator.lifecycle import AlertKind, EventKind
from orchestrator.state.retention import compact, footprint
from orchestrator.state.tables import AgentEvent, Alert, EquitySample

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_old_history_is_compacted_and_recent_history_kept(store):
    (agent,), _ = store.spawn(
        "key-retention",
        [{"name": "a", "strategy": "contrarian"}],
        lambda agent_id: f"h-{agent_id}",
        NOW - timedelta(days=60),
    )
    with store.session() as s:
        for days in (50, 40, 1):
            at = NOW - timedelta(days=days)
            s.add(AgentEvent(agent_id=agent.id, at=at, kind=EventKind.RUNNING, message="x"))
            for hour in range(3):  # three samples on each of these days
                s.add(EquitySample(agent_id=agent.id, at=at + timedelta(hours=hour), equity=hour))
        old, recent = NOW - timedelta(days=45), NOW - timedelta(hours=1)
        s.add(Alert(at=old, kind=AlertKind.REPORT, text="sent", delivery="sent"))
        s.add(Alert(at=old, kind=AlertKind.REPORT, text="waiting", delivery="pending"))
        s.add(Alert(at=recent, kind=AlertKind.REPORT, text="new", delivery="sent"))
        s.commit()

    done = compact(store, NOW - timedelta(days=30))
    assert (done.samples, done.alerts) == (4, 1) and done.events >= 2  # spawn's own event too
    with store.session() as s:
        samples = s.exec(select(EquitySample).order_by(EquitySample.at)).all()
        events = s.exec(select(AgentEvent)).all()
        alerts = sorted(a.text for a in s.exec(select(Alert)).all())
    # the last of each old day, and every sample of the recent day
    assert [sample.equity for sample in samples] == [2, 2, 0, 1, 2]
    assert [e.at.day for e in events] == [(NOW - timedelta(days=1)).day]
    assert alerts == ["new", "waiting"]
    assert not compact(store, NOW - timedelta(days=30))  # a second pass finds nothing


def test_the_footprint_counts_the_last_day_and_estimates_growth(store):
    (agent,), _ = store.spawn(
        "key-footprint",
        [{"name": "a", "strategy": "contrarian"}],
        lambda agent_id: f"h-{agent_id}",
        NOW - timedelta(days=3),
    )
    with store.session() as s:
        for hours in (1, 2, 30, 50):
            at = NOW - timedelta(hours=hours)
            s.add(EquitySample(agent_id=agent.id, at=at, equity=1.0))
        s.commit()
    size = footprint(store, NOW)
    assert size.size_bytes > 0
    assert (size.rows, size.rows_last_day) == (5, 2)  # four samples and the spawn's event
    assert size.growth_per_day == size.size_bytes * 2 / 5
