"""NYSE trading sessions (exchange_calendars "XNYS"), built once per process.

The calendar covers 1990-01-02 up to the end of the year two years from now; a date
outside that span is a UserError, so a typo in --start fails loudly instead of
silently returning no sessions.

Importing exchange_calendars (pandas) and building the calendar take about a second, which
`forecaster status`, the container's health check, should not pay every minute: the sessions
are kept in a small file in the user's cache directory (XDG_CACHE_HOME, else ~/.cache), keyed
on the exchange_calendars version and the span, and rebuilt when missing or unreadable.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import numpy as np

from forecaster.errors import UserError

CALENDAR_START = date(1990, 1, 1)


@dataclass(frozen=True)
class _Sessions:
    days: np.ndarray  # (sessions,) datetime64[D], ascending
    closes: np.ndarray  # (sessions,) datetime64[ns], the session's close in UTC, early closes included
    end: date  # the last calendar day covered (a session or not)


@cache
def _sessions() -> _Sessions:
    end = date(date.today().year + 2, 12, 31)
    cached = _cache_file(end)
    try:
        with np.load(cached) as stored:
            return _Sessions(days=stored["days"], closes=stored["closes"], end=end)
    except (OSError, KeyError, ValueError):
        sessions = _build(end)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".npz", delete=False) as handle:
            np.savez(handle, days=sessions.days, closes=sessions.closes)
        os.replace(handle.name, cached)
    except OSError:
        pass  # no writable cache directory: the next process builds the calendar again
    return sessions


def _cache_file(end: date) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    version = importlib.metadata.version("exchange_calendars")
    return base / "forecaster" / f"xnys-{version}-{CALENDAR_START}-{end}.npz"


def _build(end: date) -> _Sessions:
    import exchange_calendars  # here, not at the top: it is slow to import and most commands never need it

    with warnings.catch_warnings():
        # exchange_calendars 4.x reads `Series.values` on tz-aware columns; pandas 3.1 deprecates it.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray", category=Warning)
        calendar = exchange_calendars.get_calendar("XNYS", start=CALENDAR_START.isoformat(), end=end.isoformat())
        days = calendar.sessions.to_numpy().astype("datetime64[D]")
        closes = calendar.closes.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    return _Sessions(days=days, closes=closes, end=end)


def _day(d: date, what: str = "date") -> np.datetime64:
    """`d` as a datetime64[D] inside the calendar's span (a datetime counts as its date)."""
    d = date(d.year, d.month, d.day)
    end = _sessions().end
    if not CALENDAR_START <= d <= end:
        raise UserError(f"{what} {d} is outside the NYSE calendar ({CALENDAR_START} to {end})")
    return np.datetime64(d, "D")


def is_session(d: date) -> bool:
    days = _sessions().days
    day = _day(d)
    i = int(np.searchsorted(days, day))
    return bool(i < len(days) and days[i] == day)


def next_session(d: date) -> date:
    """The first session strictly after `d`; `d` need not be a session."""
    days = _sessions().days
    i = int(np.searchsorted(days, _day(d), side="right"))
    if i >= len(days):
        raise UserError(f"date {d}: no NYSE session after it in the calendar")
    return days[i].item()


def _span(start: date, end: date) -> slice:
    """The slice of the session array from `start` to `end`, both inclusive."""
    days = _sessions().days
    lo = int(np.searchsorted(days, _day(start, "start"), side="left"))
    hi = int(np.searchsorted(days, _day(end, "end"), side="right"))
    return slice(lo, max(hi, lo))


def sessions_between(start: date, end: date) -> list[date]:
    """Every session from `start` to `end`, both inclusive (empty when start > end)."""
    return [d.item() for d in _sessions().days[_span(start, end)]]


def count_sessions(start: date, end: date) -> int:
    """How many sessions `sessions_between(start, end)` holds, without building the list."""
    span = _span(start, end)
    return span.stop - span.start


def sessions_back(d: date, count: int) -> date:
    """The first of the `count` latest sessions at or before `d`, so that
    `sessions_between(sessions_back(d, n), d)` holds n sessions (fewer only at the calendar's start)."""
    if count < 1:
        raise ValueError(f"sessions_back needs a count of at least 1, got {count}")
    days = _sessions().days
    last = int(np.searchsorted(days, _day(d), side="right")) - 1
    return days[max(last - count + 1, 0)].item()


def latest_completed_session(now: datetime) -> date:
    """The latest session whose close (16:00 New York, or the early close) is at or before `now`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("latest_completed_session needs a timezone-aware datetime")
    sessions = _sessions()
    _day(now.date(), "now")
    now_utc = np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "ns")
    i = int(np.searchsorted(sessions.closes, now_utc, side="right")) - 1
    if i < 0:
        raise UserError(f"now {now.isoformat()}: no NYSE session has closed yet in the calendar")
    return sessions.days[i].item()
