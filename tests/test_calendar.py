"""The NYSE calendar that gates live trading, and the simulated market's always-open one."""

from datetime import UTC, date, datetime, timedelta

import pytest

from feeds.calendar import NEW_YORK, AlwaysOpen, NyseCalendar, calendar_for

NYSE = NyseCalendar()


def ny(text: str) -> datetime:
    """A New York wall time, e.g. '2026-11-23 09:30'."""
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2026-11-23 09:29:59", False),  # Monday, a second before the bell
        ("2026-11-23 09:30", True),
        ("2026-11-23 15:59:59", True),
        ("2026-11-23 16:00", False),
        ("2026-11-22 12:00", False),  # Sunday
        ("2026-11-26 12:00", False),  # Thanksgiving
        ("2026-11-27 12:59", True),  # the day after closes early
        ("2026-11-27 13:00", False),
        ("2026-12-24 13:30", False),  # Christmas Eve on a Thursday closes at 13:00
        ("2026-07-03 10:00", False),  # Independence Day observed (the 4th is a Saturday)
        ("2026-07-02 15:00", True),  # ... so the 2nd is a full day
        ("2025-07-03 13:30", False),  # the 3rd on a Thursday closes early
        ("2026-04-03 11:00", False),  # Good Friday
        ("2027-12-24 11:00", False),  # Christmas observed on Friday the 24th
    ],
)
def test_regular_sessions_holidays_and_early_closes(moment, is_open):
    assert NYSE.is_open(ny(moment)) is is_open


def test_sessions_keep_new_york_hours_across_daylight_saving():
    summer = NYSE.session(date(2026, 7, 1))
    winter = NYSE.session(date(2026, 12, 1))
    assert summer[0] == datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
    assert winter[0] == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert winter[1] - winter[0] == timedelta(hours=6, minutes=30)


def test_next_change_skips_weekends_and_holidays():
    # Wednesday night before Thanksgiving: the next open is Friday's, which closes at 13:00.
    opens = NYSE.next_change(ny("2026-11-25 17:00"))
    assert opens == ny("2026-11-27 09:30")
    assert NYSE.next_change(opens) == ny("2026-11-27 13:00")
    assert NYSE.next_change(ny("2026-11-27 13:00")) == ny("2026-11-30 09:30")


def test_the_simulated_market_is_always_open():
    market = calendar_for("always")
    assert isinstance(market, AlwaysOpen)
    assert market.is_open(ny("2026-11-22 03:00")) and market.next_change(ny("2026-11-22")) is None
    assert calendar_for("nyse").hours == "nyse"


def test_auto_market_hours_follow_the_data_providers(tmp_path):
    from orchestrator.settings import Settings

    assert Settings(state_dir=tmp_path).market_hours == "always"
    assert Settings(state_dir=tmp_path, quote_provider="alpaca").market_hours == "nyse"
    live_but_always = Settings(state_dir=tmp_path, news_provider="newsapi", market_hours="always")
    assert live_but_always.market_hours == "always"


def test_the_exchanges_rules_give_the_holidays_the_holidays_package_knows():
    """The rules (and the special closings) against an independent source, year by year:
    every weekday the `holidays` package's NYSE calendar closes, and no other."""
    import holidays  # a test dependency only: an agent does not carry its 15 MiB

    for year in range(2000, 2046):
        known = set(holidays.financial_holidays("NYSE", years=year))
        closed = {
            day
            for day in (date(year, 1, 1) + timedelta(days=n) for n in range(366))
            if day.year == year and day.weekday() < 5 and NYSE.session(day) is None
        }
        assert closed == {d for d in known if d.weekday() < 5}, year


@pytest.mark.parametrize("now", ["2026-12-02 07:00", "2026-12-05 20:00", "2026-12-06 23:59"])
def test_the_scale_benchmarks_idle_market_stays_closed_for_a_day(now):
    from bench.scale import closed_market
    from feeds.clock import MarketClock

    wall = datetime.fromisoformat(now).replace(tzinfo=UTC)
    settings = closed_market(wall)
    clock = MarketClock(
        float(settings["FLEET_MARKET_TIME_SCALE"]),
        datetime.fromisoformat(settings["FLEET_MARKET_ANCHOR"]),
    )
    assert settings["FLEET_MARKET_HOURS"] == "nyse"
    for hours in range(25):
        market = clock.anchor + (wall + timedelta(hours=hours) - clock.anchor) * clock.time_scale
        assert not NYSE.is_open(market), (now, hours)
    # from Saturday 06:00 in New York, at twice the wall's pace: Monday 06:00, before the bell
    ends = market.astimezone(NEW_YORK)
    assert (ends.weekday(), ends.hour) == (0, 6)
