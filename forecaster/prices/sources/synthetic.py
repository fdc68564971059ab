"""Seeded synthetic prices: geometric Brownian motion per ticker on the real sessions of its market.

Each ticker trades on its own calendar (forecaster.markets: `BTC-USD` every day on 24/7, `7203.T`
on Tokyo's sessions, a plain name on New York's), as `calendar_of` says. Every value is a pure
function of (seed, parameters, ticker, session date), the calendar being one of the parameters:
whatever tickers, on whatever calendars, or range are asked for. A range costs only the calendar
years it touches:

- the total log return of each calendar year comes from the ticker's "year totals" stream:
  N(n·(drift − σ²/2), n·σ²) for a year of n sessions.
- inside a year, the daily log returns are iid normals conditioned on summing to that total
  (subtract their mean, add total / n): exactly the law of GBM increments given their sum,
  a Brownian bridge between year ends.

The noise of each (ticker, field, year) is its own numpy generator (`default_rng` seeded with
that tuple through a SeedSequence), drawn for the whole year and read at the sessions asked
for: any session's noise depends on nothing else. Open, high, low and volume use uniform noise.

`start_price` is every ticker's close just before the first session of 2020 on its calendar (so
recent prices stay near it); earlier years are walked back from there. Prices exist for every
session the calendar covers (1990, or the calendar's first date, to two years ahead); a range
reaching outside a ticker's calendar is a UserError naming it. The years a calendar does not
cover (Tokyo's before 1997) hold no session and add nothing. On New York's calendar the values
are those this source always gave, the same bits.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import date
from functools import cache

import numpy as np
import polars as pl

from forecaster.calendar import CALENDAR_START, trading_calendar
from forecaster.markets import resolve_calendar
from forecaster.price_frame import conform
from forecaster.prices.sources.base import FetchResult

log = logging.getLogger(__name__)

ANCHOR_YEAR = 2020  # start_price is the close before this year's first session
_FIRST_YEAR = CALENDAR_START.year
_OPEN_GAP = 0.25  # overnight gap, in daily volatilities
_WICK = 0.5  # high above max(open, close) and low below min(open, close), in daily volatilities
_VOLUME = 1_000_000  # volumes are uniform in [0.5, 1.5] times this

# The independent noise streams of a ticker; each is indexed by (year, position in the year).
_CLOSE, _OPEN, _HIGH, _LOW, _VOLUME_STREAM, _YEAR_TOTALS = range(6)


def calendar_from_symbol(ticker: str) -> str:
    """The calendar a ticker's symbol names, with no overrides (forecaster.markets.resolve_calendar)."""
    return resolve_calendar(ticker, {})


class SyntheticSource:
    """PriceSource of seeded GBM prices, each ticker on the sessions of the calendar `calendar_of`
    gives it (by default the one its symbol names); it never reports a ticker as failed. A ticker
    whose market is unknown (an unknown suffix) is bad input, a UserError, as at settings load."""

    def __init__(
        self,
        seed: int = 0,
        start_price: float = 100.0,
        drift: float = 0.0002,
        volatility: float = 0.012,
        calendar_of: Callable[[str], str] = calendar_from_symbol,
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not (start_price > 0 and volatility >= 0):
            raise ValueError("start_price must be positive and volatility non-negative")
        self.seed, self.start_price, self.drift, self.volatility = seed, start_price, drift, volatility
        self.calendar_of = calendar_of
        self.name = f"synthetic:{seed}"
        self._announced = False

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        if not self._announced:  # a watch list of real names (SPY...) gets made-up prices: say so once
            log.warning(
                "source %s: simulated prices (seeded random walks), not market data, whatever the tickers are called",
                self.name,
            )
            self._announced = True
        by_calendar: dict[str, list[str]] = {}
        for ticker in sorted(set(tickers)):
            by_calendar.setdefault(self.calendar_of(ticker), []).append(ticker)
        frames = [self._prices_on(calendar, group, start, end) for calendar, group in by_calendar.items()]
        frames = [frame for frame in frames if frame.height]
        if not frames:
            return FetchResult()
        prices = frames[0] if len(frames) == 1 else pl.concat(frames).sort("ticker", "session_date")
        return FetchResult(prices=conform(prices))

    def _prices_on(self, calendar: str, wanted: list[str], start: date, end: date) -> pl.DataFrame:
        """The prices of `wanted` (sorted tickers, all on `calendar`) on its sessions from `start` to `end`."""
        sessions = np.array(trading_calendar(calendar).sessions_between(start, end), dtype="datetime64[D]")  # (days,)
        if len(sessions) == 0:
            return pl.DataFrame()
        keys = np.array([_ticker_key(self.seed, t) for t in wanted], dtype=np.uint64)  # (tickers,)
        years = sessions.astype("datetime64[Y]").astype(int) + 1970  # (days,)
        totals, log_before = self._year_totals(calendar, keys, max(int(years[-1]), ANCHOR_YEAR))  # (tickers, years)
        blocks = []
        for year in range(int(years[0]), int(years[-1]) + 1):
            y = year - _FIRST_YEAR
            at = np.searchsorted(_year_sessions(calendar, year), sessions[years == year])  # their places in the year
            blocks.append(self._prices_in_year(calendar, keys, year, at, log_before[:, y], totals[:, y]))
        values = np.concatenate(blocks, axis=2)  # (tickers, 5, days)
        open_, high, low, close, volume = (values[:, k, :].ravel() for k in range(5))  # ticker-major
        prices = pl.DataFrame(
            {
                "ticker": pl.Series(wanted).gather(np.repeat(np.arange(len(wanted)), len(sessions))),
                "session_date": np.tile(sessions, len(wanted)),
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "adj_close": close,
                "volume": volume,
            }
        )
        return prices

    def _year_totals(self, calendar: str, keys: np.ndarray, last_year: int) -> tuple[np.ndarray, np.ndarray]:
        """Per ticker and calendar year from 1990 to `last_year`: the year's total log return,
        and the log close before its first session (a year without sessions adds nothing)."""
        counts = np.array([len(_year_sessions(calendar, y)) for y in range(_FIRST_YEAR, last_year + 1)])  # (years,)
        z = _normals(keys, _YEAR_TOTALS, 0, len(counts))  # (tickers, years)
        mu = self.drift - self.volatility**2 / 2  # the daily mean log return of GBM
        totals = counts * mu + self.volatility * np.sqrt(counts) * z  # (tickers, years)
        before = np.cumsum(totals, axis=1) - totals  # (tickers, years): log return from 1990 to each year's start
        anchor = before[:, ANCHOR_YEAR - _FIRST_YEAR, None]  # (tickers, 1)
        return totals, np.log(self.start_price) + before - anchor

    def _prices_in_year(
        self, calendar: str, keys: np.ndarray, year: int, at: np.ndarray, log_start: np.ndarray, total: np.ndarray
    ) -> np.ndarray:
        """(tickers, 5, len(at)): open, high, low, close, volume on the year's sessions number `at`.

        The closes follow the bridge over the whole year, so no value depends on the range asked."""
        n = len(_year_sessions(calendar, year))
        z = _normals(keys, _CLOSE, year, n)  # (tickers, n)
        returns = self.volatility * (z - z.mean(axis=1, keepdims=True)) + (total / n)[:, None]  # sums to total
        log_close = log_start[:, None] + np.cumsum(returns, axis=1)  # (tickers, n)
        log_previous = np.concatenate([log_start[:, None], log_close[:, :-1]], axis=1)  # (tickers, n)
        close, previous = np.exp(log_close[:, at]), np.exp(log_previous[:, at])  # (tickers, days)
        sigma = self.volatility
        gap = np.sqrt(3.0) * (2.0 * _uniforms(keys, _OPEN, year, n, at) - 1.0)  # mean 0, variance 1
        open_ = previous * np.exp(_OPEN_GAP * sigma * gap)
        high = np.maximum(open_, close) * np.exp(_WICK * sigma * _uniforms(keys, _HIGH, year, n, at))
        low = np.minimum(open_, close) * np.exp(-_WICK * sigma * _uniforms(keys, _LOW, year, n, at))
        volume = np.round(_VOLUME * (0.5 + _uniforms(keys, _VOLUME_STREAM, year, n, at)))
        return np.stack([open_, high, low, close, volume], axis=1)


def _ticker_key(seed: int, ticker: str) -> int:
    """A stable 64-bit key for (seed, ticker); Python's own hash() changes between processes."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{ticker}".encode(), digest_size=8).digest(), "little")


def _streams(keys: np.ndarray, stream: int, year: int, draw: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
    """(tickers, draws): `draw` from the generator of each (key, stream, year)."""
    return np.stack([draw(np.random.default_rng([int(key), stream, year])) for key in keys])


def _uniforms(keys: np.ndarray, stream: int, year: int, count: int, positions: np.ndarray) -> np.ndarray:
    """(tickers, positions) uniforms in [0, 1): the year's stream of `count` draws (one per session of
    the year) read at the sessions `positions`."""
    return _streams(keys, stream, year, lambda generator: generator.random(count))[:, positions]


def _normals(keys: np.ndarray, stream: int, year: int, count: int) -> np.ndarray:
    """(tickers, count) standard normals: the first `count` of the stream (the same whatever `count`)."""
    return _streams(keys, stream, year, lambda generator: generator.standard_normal(count))


@cache
def _year_sessions(calendar: str, year: int) -> np.ndarray:
    """(sessions,) datetime64[D]: every session of the calendar year on `calendar` (none outside its span)."""
    sessions = trading_calendar(calendar)
    first, last = max(date(year, 1, 1), sessions.start), min(date(year, 12, 31), sessions.end)
    days = sessions.sessions_between(first, last) if first <= last else []
    return np.array(days, dtype="datetime64[D]")
