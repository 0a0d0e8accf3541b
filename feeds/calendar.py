"""When the market trades: the NYSE calendar for live data, or always for the simulation.

Live providers quote a real exchange, so agents hold their orders outside its regular
session: 09:30–16:00 New York time on weekdays that are not NYSE holidays, closing at
13:00 on the customary early-close days. The simulated market trades around the clock and
says so. Times are market times (see `feeds.clock`): a sped-up market keeps the NYSE's
hours in its own time. Pure: no clock.

The holidays are the exchange's rules (NYSE Rule 7.2), computed here: an agent that
imported the `holidays` package for them grew from 10 to 25 MiB. Its NYSE calendar checks
these rules in the tests, from 2000 on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
MarketHours = Literal["always", "nyse"]


def trading_day(at: datetime) -> str:
    """The exchange's date of `at` (YYYY-MM-DD, New York time): the one meaning of
    "today" for orders."""
    return at.astimezone(NEW_YORK).date().isoformat()


class Calendar(Protocol):
    """Whether the market is in session, and when that next changes."""

    hours: MarketHours

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (with a zone) falls in a session."""
        ...

    def next_change(self, at: datetime) -> datetime | None:
        """The next open (if closed at `at`) or close (if open), in UTC; None if never."""
        ...


class AlwaysOpen:
    """The simulated market: every moment is in session."""

    hours: MarketHours = "always"

    def is_open(self, at: datetime) -> bool:
        """Always."""
        return True

    def next_change(self, at: datetime) -> datetime | None:
        """Never."""
        return None


# Days the exchange closed outside its rules: days of mourning, and the market shut by
# events (since 2000, the range the tests check).
SPECIAL_CLOSINGS = frozenset(
    [
        date(2001, 9, 11),  # the attacks on the World Trade Center, to the 14th
        date(2001, 9, 12),
        date(2001, 9, 13),
        date(2001, 9, 14),
        date(2004, 6, 11),  # President Reagan
        date(2007, 1, 2),  # President Ford
        date(2012, 10, 29),  # Hurricane Sandy
        date(2012, 10, 30),
        date(2018, 12, 5),  # President G. H. W. Bush
        date(2025, 1, 9),  # President Carter
    ]
)


def _nth(year: int, month: int, weekday: int, n: int) -> date:
    """The `n`-th `weekday` (0 = Monday) of the month; n = -1 is the last."""
    if n < 0:
        last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday) // 451
    month, day = divmod(h + weekday - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _observed(day: date) -> date:
    """A fixed-date holiday on a weekend is kept on the Friday before or the Monday after."""
    return day + timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0))


@lru_cache(maxsize=8)
def _nyse_holidays(year: int) -> frozenset[date]:
    days = {
        _nth(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),  # Independence Day
        _nth(year, 9, 0, 1),  # Labor Day
        _nth(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),  # Christmas
    }
    if date(year, 1, 1).weekday() != 5:  # on a Saturday, no Friday off in the old year
        days.add(_observed(date(year, 1, 1)))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days | {d for d in SPECIAL_CLOSINGS if d.year == year})


def _early_close(day: date) -> bool:
    # The day before Independence Day and Christmas Eve when they are Monday to Thursday
    # (on a Friday they are the observed holiday), and the day after Thanksgiving.
    if (day.month, day.day) in {(7, 3), (12, 24)}:
        return day.weekday() <= 3
    before = day - timedelta(days=1)
    return day.month == 11 and day.weekday() == 4 and before in _nyse_holidays(day.year)


class NyseCalendar:
    """The New York Stock Exchange's regular sessions."""

    hours: MarketHours = "nyse"

    def session(self, day: date) -> tuple[datetime, datetime] | None:
        """The open and close of `day` (New York date) in UTC, or None if it does not trade."""
        if day.weekday() >= 5 or day in _nyse_holidays(day.year):
            return None
        close = EARLY_CLOSE if _early_close(day) else CLOSE
        return (
            datetime.combine(day, OPEN, NEW_YORK).astimezone(UTC),
            datetime.combine(day, close, NEW_YORK).astimezone(UTC),
        )

    def is_open(self, at: datetime) -> bool:
        """Whether `at` falls between a trading day's open (inclusive) and close."""
        session = self.session(at.astimezone(NEW_YORK).date())
        return session is not None and session[0] <= at < session[1]

    def next_change(self, at: datetime) -> datetime | None:
        """The close of the current session, or the next session's open."""
        day = at.astimezone(NEW_YORK).date()
        for offset in range(15):  # no NYSE closure has lasted two weeks since 1933
            session = self.session(day + timedelta(days=offset))
            if session is None:
                continue
            opens, closes = session
            if at < opens:
                return opens
            if at < closes:
                return closes
        return None


def calendar_for(hours: MarketHours) -> Calendar:
    """The calendar named by a `market_hours` setting."""
    return NyseCalendar() if hours == "nyse" else AlwaysOpen()
