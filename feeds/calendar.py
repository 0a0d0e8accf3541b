"""When the market trades: the NYSE calendar for live data, or always for the simulation.

Live providers quote a real exchange, so agents hold their orders outside its regular
session: 09:30–16:00 New York time on weekdays that are not NYSE holidays (the `holidays`
package's NYSE calendar), closing at 13:00 on the customary early-close days. The
simulated market trades around the clock and says so. Times are market times (see
`feeds.clock`): a sped-up market keeps the NYSE's hours in its own time. Pure: no clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import holidays

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


@lru_cache(maxsize=8)
def _nyse_holidays(year: int) -> holidays.HolidayBase:
    import holidays  # 9.6 MiB in an agent: only agents on the NYSE's hours load it

    return holidays.financial_holidays("NYSE", years=year)


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
