"""Trading sessions of any exchange_calendars calendar (XNYS, XTKS, XLON, 24/7, ...), built once per process.

A TradingCalendar covers 1990-01-01 (or the first date exchange_calendars can evaluate for that
calendar, later for some: XTKS from 1997) up to the end of the year two years from now; a date
outside that span is a UserError, so a typo in --start fails loudly instead of silently
returning no sessions. Each session has its close in UTC, early closes included: the 24/7
calendar's session D closes at 00:00 UTC on D+1.

Importing exchange_calendars (pandas) and building a calendar take about a second, which
`forecaster status`, the container's health check, should not pay every minute: each
calendar's sessions are kept in a small file in the user's cache directory (XDG_CACHE_HOME,
else ~/.cache), keyed on the calendar, the exchange_calendars version and the span, and rebuilt
when missing or unreadable.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path

import numpy as np

from forecaster.errors import UserError

CALENDAR_START = date(1990, 1, 1)
NYSE = "XNYS"


@dataclass(frozen=True)
class TradingCalendar:
    """One exchange's sessions, with their closes, and what the daemon's schedule needs of it."""

    name: str  # the exchange_calendars name: XNYS, XTKS, 24/7, ...
    days: np.ndarray  # (sessions,) datetime64[D], ascending
    closes: np.ndarray  # (sessions,) datetime64[ns]: each session's close in UTC, early closes included
    start: date  # the first calendar day covered (a session or not)
    end: date  # the last calendar day covered
    timezone: str  # the exchange's time zone (IANA name)
    regular_close: time  # a regular session's close, in the exchange's time zone

    def _day(self, d: date, what: str = "date") -> np.datetime64:
        """`d` as a datetime64[D] inside the calendar's span (a datetime counts as its date)."""
        d = date(d.year, d.month, d.day)
        if not self.start <= d <= self.end:
            raise UserError(f"{what} {d} is outside the {self.label} calendar ({self.start} to {self.end})")
        return np.datetime64(d, "D")

    @property
    def label(self) -> str:
        return "NYSE" if self.name == NYSE else self.name

    def is_session(self, d: date) -> bool:
        day = self._day(d)
        i = int(np.searchsorted(self.days, day))
        return bool(i < len(self.days) and self.days[i] == day)

    def next_session(self, d: date) -> date:
        """The first session strictly after `d`; `d` need not be a session."""
        i = int(np.searchsorted(self.days, self._day(d), side="right"))
        if i >= len(self.days):
            raise UserError(f"date {d}: no {self.label} session after it in the calendar")
        return self.days[i].item()

    def session_on_or_before(self, d: date) -> date | None:
        """The latest session at or before `d` (None before the calendar's first session)."""
        i = int(np.searchsorted(self.days, self._day(d), side="right")) - 1
        return None if i < 0 else self.days[i].item()

    def _span(self, start: date, end: date) -> slice:
        lo = int(np.searchsorted(self.days, self._day(start, "start"), side="left"))
        hi = int(np.searchsorted(self.days, self._day(end, "end"), side="right"))
        return slice(lo, max(hi, lo))

    def sessions_between(self, start: date, end: date) -> list[date]:
        """Every session from `start` to `end`, both inclusive (empty when start > end)."""
        return [d.item() for d in self.days[self._span(start, end)]]

    def count_sessions(self, start: date, end: date) -> int:
        """How many sessions `sessions_between(start, end)` holds, without building the list."""
        span = self._span(start, end)
        return span.stop - span.start

    def sessions_back(self, d: date, count: int) -> date:
        """The first of the `count` latest sessions at or before `d`, so that
        `sessions_between(sessions_back(d, n), d)` holds n sessions (fewer only at the calendar's start)."""
        if count < 1:
            raise ValueError(f"sessions_back needs a count of at least 1, got {count}")
        last = int(np.searchsorted(self.days, self._day(d), side="right")) - 1
        return self.days[max(last - count + 1, 0)].item()

    def session_close(self, d: date) -> datetime:
        """The close of session `d`, in UTC (ValueError if `d` is not a session)."""
        day = self._day(d)
        i = int(np.searchsorted(self.days, day))
        if i >= len(self.days) or self.days[i] != day:
            raise ValueError(f"{d} is not a {self.label} session")
        return _aware(self.closes[i])

    def latest_closed_session(self, now: datetime, settle: timedelta = timedelta(0)) -> date | None:
        """The latest session whose close plus `settle` is at or before `now` (None if none has)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("latest_closed_session needs a timezone-aware datetime")
        self._day((now - settle).astimezone(UTC).date(), "now")
        i = int(np.searchsorted(self.closes, _naive_utc(now - settle), side="right")) - 1
        return None if i < 0 else self.days[i].item()

    def next_close_after(self, moment: datetime, settle: timedelta = timedelta(0)) -> datetime | None:
        """The first close plus `settle` strictly after `moment` (None past the calendar's end)."""
        i = int(np.searchsorted(self.closes, _naive_utc(moment - settle), side="right"))
        return None if i >= len(self.closes) else _aware(self.closes[i]) + settle


def _naive_utc(moment: datetime) -> np.datetime64:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is needed")
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns")


def _aware(close: np.datetime64) -> datetime:
    seconds = close.astype("datetime64[s]").astype(np.int64)
    return datetime.fromtimestamp(int(seconds), UTC)


@cache
def trading_calendar(name: str) -> TradingCalendar:
    """The calendar of that exchange_calendars name; a UserError naming it when there is none."""
    end = date(date.today().year + 2, 12, 31)
    cached = _cache_file(name, end)
    try:
        with np.load(cached) as stored:
            return TradingCalendar(
                name=name,
                days=stored["days"],
                closes=stored["closes"],
                start=date.fromisoformat(str(stored["start"])),
                end=end,
                timezone=str(stored["timezone"]),
                regular_close=time.fromisoformat(str(stored["regular_close"])),
            )
    except (OSError, KeyError, ValueError):
        built = _build(name, end)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".npz", delete=False) as handle:
            np.savez(
                handle,
                days=built.days,
                closes=built.closes,
                start=built.start.isoformat(),
                timezone=built.timezone,
                regular_close=built.regular_close.isoformat(),
            )
        os.replace(handle.name, cached)
    except OSError:
        pass  # no writable cache directory: the next process builds the calendar again
    return built


def _cache_file(name: str, end: date) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    version = importlib.metadata.version("exchange_calendars")
    safe = re.sub(r"[^A-Za-z0-9]", "_", name).lower()
    return base / "forecaster" / f"{safe}-{version}-{CALENDAR_START}-{end}.npz"


def _build(name: str, end: date) -> TradingCalendar:
    import exchange_calendars  # here, not at the top: it is slow to import and most commands never need it

    with warnings.catch_warnings():
        # exchange_calendars 4.x reads `Series.values` on tz-aware columns; pandas 3.1 deprecates it.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray", category=Warning)
        try:
            bound = type(exchange_calendars.get_calendar(name)).bound_min()  # the default span: the last 20 years
        except exchange_calendars.errors.InvalidCalendarName:
            known = ", ".join(exchange_calendars.get_calendar_names(include_aliases=False))
            raise UserError(f"calendar {name!r}: exchange_calendars has no such calendar (it has {known})") from None
        start = max(CALENDAR_START, bound.date()) if bound is not None else CALENDAR_START
        calendar = exchange_calendars.get_calendar(name, start=start.isoformat(), end=end.isoformat())
        days = calendar.sessions.to_numpy().astype("datetime64[D]")
        closes = calendar.closes.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    return TradingCalendar(
        name=name,
        days=days,
        closes=closes,
        start=start,
        end=end,
        timezone=str(calendar.tz),
        regular_close=calendar.close_times[-1][1],
    )
