"""A price source that replays tickers' lives as Yahoo Finance shows them, day by day, at an injected clock.

For tests that run the daemon's catch-up through a year with an injected clock, then compare what it
stored with what a backfill run afterwards sees.

A `TickerLife` is one ticker's scripted life on one exchange_calendars calendar (XNYS by default;
XLON, XTKS, 24/7 ...) over a span of sessions:

- a seeded "true" raw price path: unadjusted closes (a random walk of daily log returns), an open
  a small gap from the previous close, a high and a low a little outside them, a volume in shares;
- dividends {ex-date: cash per share}: the raw price drops by the cash amount on the ex-date;
- splits {ex-date: ratio}, 2.0 for 2-for-1, 0.1 for 1-for-10: the raw price divides by the ratio
  on the ex-date and the volume multiplies by it;
- jumps {date: move}, +0.6 for a genuine +60 % overnight move that stays (no action explains it);
- missing {session: n}: Yahoo leaves that session out of its answers until the session n sessions
  later has closed, then fills it;
- rate-limited days: every fetch made on such a day (the date of the clock in the life's exchange
  time zone) fails every ticker asked for, whatever life it has, with RATE_LIMITED (it starts
  with "rate limited", so that callers can classify it).

Every event date must be a session of the span after its first one.

`ReplaySource(lives, clock, settle)` answers `fetch(tickers, start, end)` as yfinance.download with
auto_adjust=True would at the instant `clock()`:

- a session is final once its close (TradingCalendar.session_close) plus `settle` is at or before
  now; `settle` is how long Yahoo's bar stays unsettled after the close (0 by default);
- a session that is not final but whose date has come in the exchange's time zone (today's, from
  local midnight) is a live bar: its own open, but a partial close (off the final close, between
  it and the open), a high and a low bracketing those two, and part of the day's volume;
- every bar is adjusted as of today (the date of now in the exchange's time zone): for each ex-date
  on or before today, every bar before the ex-date is multiplied by (1 - dividend / raw close of
  the session before the ex-date) for a dividend, and its prices divided by (its volume multiplied
  by) the ratio for a split; so the history changes after each ex-date, as Yahoo's does. The
  dividends column carries a dividend on its ex-date in that basis (the cash amount divided by the
  ratios of the later splits up to today), the stock_splits column the ratio on its ex-date, 0
  elsewhere; adj_close = close.
- a ticker without a life, or with no row in [start, end] at now, fails with NO_ROWS (YahooSource's).

An answer depends on nothing but the lives and now: same clock, same answer. `final_history`
gives each life's whole span as answered once everything has settled (every session final,
every missing session filled): what a backfill run afterwards sees. `daemon_runs` gives the
moments a daemon would run at for a life (each session's close plus the daemon's settle), to drive
a day-by-day test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from forecaster.calendar import NYSE, trading_calendar
from forecaster.price_frame import conform, empty_prices
from forecaster.prices.sources.base import FetchResult
from forecaster.prices.sources.failures import NO_ROWS

#: The reason every ticker fails with on a rate-limited day: yfinance's own exception, after "rate limited".
RATE_LIMITED = "rate limited: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"

_LIVE_SHARE = (
    0.5  # a live bar's close is this far (in log) from its open towards the final close, its volume this share
)
_LIVE_OFFSET = 0.004  # ... and that close is times (1 + this), so it never equals the final close
_GAP = 0.25  # the open's gap from the previous close, in daily volatilities
_WICK = 0.5  # high above max(open, close) and low below min(open, close), at most this many daily volatilities
_VOLUME = 1_000_000  # raw volumes are uniform in [0.5, 1.5] times this (before any split)


@dataclass(frozen=True)
class TickerLife:
    """One ticker's scripted life on a calendar's sessions from `start` to `end` (see the module docstring)."""

    ticker: str
    calendar: str = NYSE
    start: date = date(2024, 1, 1)
    end: date = date(2024, 12, 31)
    seed: int = 0
    start_price: float = 100.0
    drift: float = 0.0003
    volatility: float = 0.015
    dividends: Mapping[date, float] = field(default_factory=dict)  # ex-date -> cash per share (raw basis)
    splits: Mapping[date, float] = field(default_factory=dict)  # ex-date -> ratio (2.0 for 2:1, 0.1 for 1:10)
    jumps: Mapping[date, float] = field(default_factory=dict)  # date -> move that stays (0.6 for +60 %)
    missing: Mapping[date, int] = field(default_factory=dict)  # session -> sessions until Yahoo fills it
    rate_limited: AbstractSet[date] = frozenset()  # days on which every fetch fails

    def sessions(self) -> list[date]:
        """The life's sessions: the calendar's from `start` to `end`."""
        return trading_calendar(self.calendar).sessions_between(self.start, self.end)

    def raw_bars(self) -> pl.DataFrame:
        """The true bars, unadjusted, every session final and present (SOURCE_SCHEMA, actions in the raw basis)."""
        path = _Path.of(self)
        everything = np.ones(len(path.days), dtype=bool)
        return _frame(self.ticker, path.days, path.bars, _actions(len(path.days), path.actions), everything)

    def filled_at(self, session: date) -> date:
        """The session after whose close the missing `session` appears in Yahoo's answers."""
        after = self.missing[session]
        if after < 1:
            raise ValueError(f"{self.ticker}: missing session {session} must be filled at least 1 session later")
        calendar = trading_calendar(self.calendar)
        return calendar.sessions_between(session + timedelta(days=1), calendar.end)[after - 1]


class DaemonRun(NamedTuple):
    """When a daemon runs for a session: its close plus the daemon's settle."""

    session: date
    at: datetime


def daemon_runs(life: TickerLife, settle: timedelta = timedelta(0)) -> list[DaemonRun]:
    """One run per session of the life, in order: at the session's close plus `settle`."""
    calendar = trading_calendar(life.calendar)
    return [DaemonRun(session, calendar.session_close(session) + settle) for session in life.sessions()]


class ReplayCall(NamedTuple):
    """One fetch asked of a ReplaySource, and the clock's time when it was asked."""

    at: datetime
    tickers: tuple[str, ...]
    start: date
    end: date


class ReplaySource:
    """PriceSource that answers as Yahoo Finance (auto_adjust=True) would at `clock()`; records each fetch in `calls`."""

    name = "yahoo-replay"

    def __init__(
        self, lives: Sequence[TickerLife], clock: Callable[[], datetime], settle: timedelta = timedelta(minutes=0)
    ) -> None:
        tickers = [life.ticker for life in lives]
        if len(set(tickers)) != len(tickers):
            raise ValueError(f"one life per ticker, got {tickers}")
        self.lives = {life.ticker: life for life in lives}
        self.clock = clock
        self.settle = settle
        self.calls: list[ReplayCall] = []
        self._paths = {life.ticker: _Path.of(life) for life in lives}

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        now = _aware(self.clock())
        wanted = list(dict.fromkeys(tickers))
        self.calls.append(ReplayCall(now, tuple(wanted), start, end))
        if self.rate_limited(now):
            return FetchResult(failures=dict.fromkeys(wanted, RATE_LIMITED))
        frames, failures = [], {}
        for ticker in wanted:
            frame = self._answer(ticker, start, end, now) if ticker in self._paths else empty_prices()
            if frame.is_empty():
                failures[ticker] = NO_ROWS
            else:
                frames.append(frame)
        return FetchResult(prices=_joined(frames), failures=failures)

    def rate_limited(self, now: datetime) -> bool:
        """Whether `now` falls on a rate-limited day of any life (in that life's exchange time zone)."""
        return any(_local_date(now, path.timezone) in path.life.rate_limited for path in self._paths.values())

    def final_history(self, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        """Each life's whole span as answered once everything has settled: what a backfill afterwards sees."""
        chosen = list(self._paths) if tickers is None else list(dict.fromkeys(tickers))
        unknown = [ticker for ticker in chosen if ticker not in self._paths]
        if unknown:
            raise ValueError(f"no life for {unknown}")
        frames = [self._answer(t, self.lives[t].start, self.lives[t].end, self._settled_at(t)) for t in chosen]
        return _joined(frames)

    def _settled_at(self, ticker: str) -> datetime:
        """The first moment at which every session of the life is final and every missing one filled."""
        life, calendar = self.lives[ticker], trading_calendar(self.lives[ticker].calendar)
        last = [life.sessions()[-1], *(life.filled_at(session) for session in life.missing)]
        return max(calendar.session_close(session) for session in last) + self.settle

    def _answer(self, ticker: str, start: date, end: date, now: datetime) -> pl.DataFrame:
        """The ticker's rows in [start, end] as Yahoo answers at `now`."""
        path = self._paths[ticker]
        today = _local_date(now, path.timezone)
        moment = _utc64(now - self.settle)
        final = path.closes <= moment
        live = (path.days <= np.datetime64(today, "D")) & ~final
        asked = (path.days >= np.datetime64(start, "D")) & (path.days <= np.datetime64(end, "D"))
        shown = (final | live) & asked & ~path.unfilled(moment)
        bars = _with_live_bars(path.bars, live)
        actions = [action for action in path.actions if action.day <= today]
        adjusted = _adjusted(bars, actions)
        return _frame(ticker, path.days, adjusted, _adjusted_actions(len(path.days), actions), shown)


@dataclass(frozen=True)
class _Action:
    """A dividend or a split on its ex-date, as it acts on the bars before it."""

    index: int  # the ex-date's place among the life's sessions
    day: date
    price_factor: (
        float  # what the prices before the ex-date are multiplied by: 1 - cash / previous raw close, or 1 / ratio
    )
    ratio: float  # the split ratio (1 for a dividend)
    cash: float  # the dividend per share in the raw basis (0 for a split)


@dataclass(frozen=True)
class _Path:
    """A life's true raw bars and actions, as arrays over its sessions."""

    life: TickerLife
    timezone: str
    days: np.ndarray  # (sessions,) datetime64[D]
    closes: np.ndarray  # (sessions,) datetime64[ns]: each session's close in UTC
    bars: np.ndarray  # (5, sessions): raw open, high, low, close, volume
    actions: tuple[_Action, ...]  # by ex-date
    missing: np.ndarray  # (gaps,) int: the places of the missing sessions
    fills: np.ndarray  # (gaps,) datetime64[ns]: the close (UTC) after which each is filled

    @classmethod
    def of(cls, life: TickerLife) -> _Path:
        calendar = trading_calendar(life.calendar)
        sessions = life.sessions()
        if not sessions:
            raise ValueError(f"{life.ticker}: no {life.calendar} session from {life.start} to {life.end}")
        place = _places(life, sessions)
        bars = _walk(life, len(sessions), [place(d, "jump") for d in life.jumps])
        actions = _act(life, bars, place)
        missing = sorted(life.missing)
        days = np.array(sessions, dtype="datetime64[D]")
        return cls(
            life=life,
            timezone=calendar.timezone,
            days=days,
            closes=calendar.closes[np.searchsorted(calendar.days, days)],
            bars=bars,
            actions=actions,
            missing=np.array([place(d, "missing session") for d in missing], dtype=np.int64),
            fills=np.array(
                [_utc64(calendar.session_close(life.filled_at(d))) for d in missing], dtype="datetime64[ns]"
            ),
        )

    def unfilled(self, moment: np.datetime64) -> np.ndarray:
        """(sessions,) bool: the missing sessions Yahoo has not filled yet, for a close at or before `moment` final."""
        hidden = np.zeros(len(self.days), dtype=bool)
        hidden[self.missing[self.fills > moment]] = True
        return hidden


def _places(life: TickerLife, sessions: list[date]) -> Callable[[date, str], int]:
    """Maps an event's date to its place among the sessions; a ValueError unless it is a session after the first."""
    index = {d: i for i, d in enumerate(sessions)}

    def place(day: date, what: str) -> int:
        i = index.get(day, 0)
        if i < 1:
            raise ValueError(f"{life.ticker}: {what} on {day} is not a {life.calendar} session after {sessions[0]}")
        return i

    return place


def _walk(life: TickerLife, count: int, jumps: list[int]) -> np.ndarray:
    """(5, count): the seeded open, high, low, close, volume before any action, with the jumps in."""
    rng = np.random.default_rng([life.seed, _ticker_key(life.ticker)])
    sigma = life.volatility
    returns = rng.normal(life.drift - sigma**2 / 2, sigma, count)
    gaps, high_wicks, low_wicks = rng.normal(0, _GAP * sigma, count), rng.random(count), rng.random(count)
    volume = np.round(_VOLUME * (0.5 + rng.random(count)))
    moves = np.zeros(count)
    for i, day in zip(jumps, life.jumps, strict=True):
        moves[i] = np.log1p(life.jumps[day])
    log_close = np.log(life.start_price) + np.cumsum(returns + moves)
    log_previous = np.concatenate([[np.log(life.start_price)], log_close[:-1]])
    close, open_ = np.exp(log_close), np.exp(log_previous + moves + gaps)
    high = np.maximum(open_, close) * np.exp(_WICK * sigma * high_wicks)
    low = np.minimum(open_, close) * np.exp(-_WICK * sigma * low_wicks)
    return np.stack([open_, high, low, close, volume])


def _act(life: TickerLife, bars: np.ndarray, place: Callable[[date, str], int]) -> tuple[_Action, ...]:
    """Applies the dividends and splits to the raw bars in place, in date order; returns them as actions."""
    events = sorted(
        [(d, "split", r) for d, r in life.splits.items()] + [(d, "dividend", c) for d, c in life.dividends.items()]
    )
    actions = []
    for day, kind, amount in events:
        i = place(day, kind)
        if kind == "split":
            if not amount > 0:
                raise ValueError(f"{life.ticker}: split ratio {amount} on {day} is not positive")
            action = _Action(i, day, price_factor=1 / amount, ratio=amount, cash=0.0)
        else:
            factor = 1 - amount / bars[3, i - 1]
            if not (amount > 0 and factor > 0):
                raise ValueError(f"{life.ticker}: dividend {amount} on {day} is not in (0, previous close)")
            action = _Action(i, day, price_factor=factor, ratio=1.0, cash=amount)
        bars[:4, i:] *= action.price_factor
        bars[4, i:] *= action.ratio
        actions.append(action)
    return tuple(actions)


def _with_live_bars(bars: np.ndarray, live: np.ndarray) -> np.ndarray:
    """The bars with the `live` sessions' replaced by a still-changing bar: its open, a partial close and volume."""
    bars = bars.copy()
    open_, close = bars[0, live], bars[3, live]
    partial = open_ * (close / open_) ** _LIVE_SHARE * (1 + _LIVE_OFFSET)
    bars[1, live], bars[2, live] = np.maximum(open_, partial), np.minimum(open_, partial)
    bars[3, live] = partial
    bars[4, live] = np.round(bars[4, live] * _LIVE_SHARE)
    return bars


def _adjusted(bars: np.ndarray, actions: Sequence[_Action]) -> np.ndarray:
    """The bars adjusted for `actions`: prices times each later action's price factor, volumes times each later ratio."""
    count = bars.shape[1]
    prices = _later_product(count, [(a.index, a.price_factor) for a in actions])
    shares = _later_product(count, [(a.index, a.ratio) for a in actions])
    return np.concatenate([bars[:4] * prices, bars[4:] * shares])


def _later_product(count: int, factors: Sequence[tuple[int, float]]) -> np.ndarray:
    """(count,): at each place, the product of the factors at later places."""
    at = np.ones(count)
    for i, factor in factors:
        at[i] *= factor
    return np.append(np.cumprod(at[::-1])[::-1][1:], 1.0)


def _adjusted_actions(count: int, actions: Sequence[_Action]) -> np.ndarray:
    """(2, count): each dividend on its ex-date divided by the later splits' ratios, each split's ratio."""
    to_split_basis = _later_product(count, [(a.index, 1 / a.ratio) for a in actions])
    return _actions(count, actions) * np.stack([to_split_basis, np.ones(count)])


def _actions(count: int, actions: Sequence[_Action]) -> np.ndarray:
    """(2, count): the dividends (raw cash) and split ratios on their ex-dates, 0 elsewhere."""
    values = np.zeros((2, count))
    for action in actions:
        values[0, action.index] += action.cash
        if action.ratio != 1.0:
            values[1, action.index] = action.ratio
    return values


def _frame(ticker: str, days: np.ndarray, bars: np.ndarray, actions: np.ndarray, shown: np.ndarray) -> pl.DataFrame:
    """The shown sessions' rows in SOURCE_SCHEMA."""
    open_, high, low, close, volume = bars[:, shown]
    frame = pl.DataFrame(
        {
            "ticker": [ticker] * int(shown.sum()),
            "session_date": days[shown],
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close,
            "volume": volume,
            "dividends": actions[0, shown],
            "stock_splits": actions[1, shown],
        }
    )
    return conform(frame)


def _joined(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames).sort("ticker", "session_date") if frames else empty_prices()


def _ticker_key(ticker: str) -> int:
    """A stable 64-bit key for the ticker; Python's own hash() changes between processes."""
    return int.from_bytes(hashlib.blake2b(ticker.encode(), digest_size=8).digest(), "little")


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"the clock must give timezone-aware datetimes, got {now!r}")
    return now


def _local_date(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def _utc64(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns")
