"""NYSE sessions: holidays, weekends, early closes and year boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from forecaster.calendar import NYSE, trading_calendar
from forecaster.errors import UserError

NYSE_CALENDAR = trading_calendar(NYSE)

NEW_YORK = ZoneInfo("America/New_York")


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 7, 3), True),  # the eve of Independence Day: an early close, still a session
        (date(2024, 7, 4), False),  # Independence Day
        (date(2024, 3, 29), False),  # Good Friday
        (date(2024, 3, 30), False),  # Saturday
        (date(2024, 3, 31), False),  # Sunday
        (date(2024, 4, 1), True),
        (date(2024, 11, 28), False),  # Thanksgiving
        (date(2024, 11, 29), True),  # the day after: an early close
        (date(2025, 1, 1), False),  # New Year's Day
        (date(2025, 1, 9), False),  # national day of mourning for President Carter
        (date(1990, 1, 2), True),  # the calendar's first session
    ],
)
def test_is_session(day, expected):
    assert NYSE_CALENDAR.is_session(day) is expected


def test_a_datetime_counts_as_its_date():
    assert NYSE_CALENDAR.is_session(datetime(2024, 7, 4, 12, 0)) is False
    assert NYSE_CALENDAR.next_session(datetime(2024, 7, 3, 23, 0)) == date(2024, 7, 5)


def test_next_session_skips_weekends_and_holidays_and_is_strictly_after():
    assert NYSE_CALENDAR.next_session(date(2024, 3, 28)) == date(2024, 4, 1)
    assert NYSE_CALENDAR.next_session(date(2024, 7, 3)) == date(2024, 7, 5)
    assert NYSE_CALENDAR.next_session(date(2024, 7, 4)) == date(2024, 7, 5)
    assert NYSE_CALENDAR.next_session(date(2024, 7, 6)) == date(2024, 7, 8)


def test_sessions_cross_year_boundaries():
    assert NYSE_CALENDAR.next_session(date(2024, 12, 31)) == date(2025, 1, 2)
    assert NYSE_CALENDAR.sessions_back(date(2023, 1, 3), 2) == date(2022, 12, 30)  # 2023-01-02: New Year observed


def test_sessions_between_is_inclusive_and_only_sessions():
    assert NYSE_CALENDAR.sessions_between(date(2024, 3, 27), date(2024, 4, 2)) == [
        date(2024, 3, 27),
        date(2024, 3, 28),
        date(2024, 4, 1),
        date(2024, 4, 2),
    ]
    assert NYSE_CALENDAR.sessions_between(date(2024, 12, 30), date(2025, 1, 3)) == [
        date(2024, 12, 30),
        date(2024, 12, 31),
        date(2025, 1, 2),
        date(2025, 1, 3),
    ]


def test_sessions_between_a_holiday_and_itself_or_a_reversed_range_is_empty():
    assert NYSE_CALENDAR.sessions_between(date(2024, 7, 4), date(2024, 7, 4)) == []
    assert NYSE_CALENDAR.sessions_between(date(2024, 7, 8), date(2024, 7, 1)) == []


def test_a_year_has_about_252_sessions():
    assert len(NYSE_CALENDAR.sessions_between(date(2023, 1, 1), date(2023, 12, 31))) == 250
    assert len(NYSE_CALENDAR.sessions_between(date(2024, 1, 1), date(2024, 12, 31))) == 252


def test_the_latest_completed_session_is_today_from_the_close_on():
    assert NYSE_CALENDAR.latest_closed_session(new_york(2024, 3, 5, 15, 59)) == date(2024, 3, 4)
    assert NYSE_CALENDAR.latest_closed_session(new_york(2024, 3, 5, 16, 0)) == date(2024, 3, 5)
    assert NYSE_CALENDAR.latest_closed_session(new_york(2024, 3, 5, 23, 59)) == date(2024, 3, 5)


def test_an_early_close_completes_the_session_at_13_00():
    assert NYSE_CALENDAR.latest_closed_session(new_york(2024, 11, 29, 12, 59)) == date(2024, 11, 27)
    assert NYSE_CALENDAR.latest_closed_session(new_york(2024, 11, 29, 13, 0)) == date(2024, 11, 29)


def test_on_weekends_and_holidays_the_latest_completed_session_is_the_one_before():
    assert NYSE_CALENDAR.latest_closed_session(new_york(2024, 3, 30, 12, 0)) == date(2024, 3, 28)  # Saturday of Easter
    assert NYSE_CALENDAR.latest_closed_session(new_york(2024, 7, 4, 18, 30)) == date(2024, 7, 3)
    assert NYSE_CALENDAR.latest_closed_session(new_york(2025, 1, 1, 18, 30)) == date(2024, 12, 31)


def test_latest_completed_session_works_in_any_timezone():
    close = new_york(2024, 3, 5, 16, 0)
    assert NYSE_CALENDAR.latest_closed_session(close.astimezone(UTC)) == date(2024, 3, 5)
    just_before = (close - timedelta(seconds=1)).astimezone(ZoneInfo("Asia/Tokyo"))  # already 2024-03-06 there
    assert NYSE_CALENDAR.latest_closed_session(just_before) == date(2024, 3, 4)


def test_latest_completed_session_needs_a_timezone():
    with pytest.raises(ValueError, match="timezone-aware"):
        NYSE_CALENDAR.latest_closed_session(datetime(2024, 3, 5, 18, 0))


@pytest.mark.parametrize("call", [NYSE_CALENDAR.is_session, NYSE_CALENDAR.next_session])
def test_dates_outside_the_calendar_are_a_user_error(call):
    with pytest.raises(UserError, match=r"1985-06-03 is outside the NYSE calendar \(1990-01-01 to "):
        call(date(1985, 6, 3))
    with pytest.raises(UserError, match="outside the NYSE calendar"):
        call(date(2200, 1, 1))


def test_sessions_between_names_the_bound_outside_the_calendar():
    with pytest.raises(UserError, match="^start 1980-01-01 is outside"):
        NYSE_CALENDAR.sessions_between(date(1980, 1, 1), date(2024, 1, 5))


def test_the_calendar_reaches_at_least_a_year_ahead():
    a_year_ahead = date.today() + timedelta(days=366)
    assert NYSE_CALENDAR.sessions_between(a_year_ahead, a_year_ahead + timedelta(days=7))


def test_sessions_back_is_the_first_of_the_last_n_sessions_up_to_a_date():
    assert NYSE_CALENDAR.sessions_back(date(2024, 4, 2), 1) == date(2024, 4, 2)
    assert NYSE_CALENDAR.sessions_back(date(2024, 4, 2), 3) == date(2024, 3, 28)  # 04-02, 04-01, then over Good Friday
    assert NYSE_CALENDAR.sessions_back(date(2024, 3, 30), 1) == date(2024, 3, 28)  # from a Saturday
    start = NYSE_CALENDAR.sessions_back(date(2025, 3, 14), 300)
    assert len(NYSE_CALENDAR.sessions_between(start, date(2025, 3, 14))) == 300


def test_sessions_back_stops_at_the_calendars_first_session():
    assert NYSE_CALENDAR.sessions_back(date(1990, 1, 10), 300) == date(1990, 1, 2)


def test_the_sessions_are_kept_in_the_cache_directory_and_rebuilt_when_the_file_is_unreadable(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    trading_calendar.cache_clear()
    try:
        built = trading_calendar(NYSE).sessions_between(date(2024, 1, 2), date(2024, 12, 31))
        (cached,) = (tmp_path / "forecaster").glob("xnys-*.npz")
        trading_calendar.cache_clear()
        read_back = trading_calendar(NYSE).sessions_between(date(2024, 1, 2), date(2024, 12, 31))
        cached.write_bytes(b"not a calendar")
        trading_calendar.cache_clear()
        rebuilt = trading_calendar(NYSE).sessions_between(date(2024, 1, 2), date(2024, 12, 31))
    finally:
        trading_calendar.cache_clear()
    assert built == read_back == rebuilt and len(built) == 252
    assert cached.read_bytes() != b"not a calendar"
