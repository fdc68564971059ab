"""Seeded synthetic prices: geometric Brownian motion per ticker on real NYSE sessions.

Every value is a pure function of (seed, parameters, ticker, session date), whatever tickers
or range are asked for, and a range costs only the calendar years it touches:

- the total log return of each calendar year comes from the ticker's "year totals" stream:
  N(n·(drift − σ²/2), n·σ²) for a year of n sessions.
- inside a year, the daily log returns are iid normals conditioned on summing to that total
  (subtract their mean, add total / n): exactly the law of GBM increments given their sum,
  a Brownian bridge between year ends.

The noise of each (ticker, field, year) is its own numpy generator (`default_rng` seeded with
that tuple through a SeedSequence), drawn for the whole year and read at the sessions asked
for: any session's noise depends on nothing else. Open, high, low and volume use uniform noise.

`start_price` is every ticker's close just before the first session of 2020 (so recent
prices stay near it); earlier years are walked back from there. Prices exist for every
session the calendar covers (1990 to two years ahead).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import date
from functools import cache

import numpy as np
import polars as pl

from forecaster.calendar import CALENDAR_START, sessions_between
from forecaster.price_frame import PRICE_SCHEMA
from forecaster.prices.sources.base import FetchResult

log = logging.getLogger(__name__)

ANCHOR_YEAR = 2020  # start_price is the close before this year's first session
_FIRST_YEAR = CALENDAR_START.year
_OPEN_GAP = 0.25  # overnight gap, in daily volatilities
_WICK = 0.5  # high above max(open, close) and low below min(open, close), in daily volatilities
_VOLUME = 1_000_000  # volumes are uniform in [0.5, 1.5] times this

# The independent noise streams of a ticker; each is indexed by (year, position in the year).
_CLOSE, _OPEN, _HIGH, _LOW, _VOLUME_STREAM, _YEAR_TOTALS = range(6)


class SyntheticSource:
    """PriceSource of seeded GBM prices; never fails a ticker."""

    def __init__(
        self, seed: int = 0, start_price: float = 100.0, drift: float = 0.0002, volatility: float = 0.012
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not (start_price > 0 and volatility >= 0):
            raise ValueError("start_price must be positive and volatility non-negative")
        self.seed, self.start_price, self.drift, self.volatility = seed, start_price, drift, volatility
        self.name = f"synthetic:{seed}"
        self._announced = False

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        if not self._announced:  # a watch list of real names (SPY...) gets made-up prices: say so once
            log.warning(
                "source %s: simulated prices (seeded random walks), not market data, whatever the tickers are called",
                self.name,
            )
            self._announced = True
        wanted = sorted(set(tickers))
        sessions = np.array(sessions_between(start, end), dtype="datetime64[D]")  # (days,)
        if not wanted or len(sessions) == 0:
            return FetchResult()
        keys = np.array([_ticker_key(self.seed, t) for t in wanted], dtype=np.uint64)  # (tickers,)
        years = sessions.astype("datetime64[Y]").astype(int) + 1970  # (days,)
        totals, log_before = self._year_totals(keys, max(int(years[-1]), ANCHOR_YEAR))  # (tickers, years) each
        blocks = []
        for year in range(int(years[0]), int(years[-1]) + 1):
            y = year - _FIRST_YEAR
            at = np.searchsorted(_year_sessions(year), sessions[years == year])  # asked sessions' places in the year
            blocks.append(self._prices_in_year(keys, year, at, log_before[:, y], totals[:, y]))
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
        ).select(pl.col(name).cast(dtype) for name, dtype in PRICE_SCHEMA.items())
        return FetchResult(prices=prices)

    def _year_totals(self, keys: np.ndarray, last_year: int) -> tuple[np.ndarray, np.ndarray]:
        """Per ticker and calendar year from 1990 to `last_year`: the year's total log return,
        and the log close before its first session."""
        counts = np.array([len(_year_sessions(y)) for y in range(_FIRST_YEAR, last_year + 1)])  # (years,)
        z = _normals(keys, _YEAR_TOTALS, 0, len(counts))  # (tickers, years)
        mu = self.drift - self.volatility**2 / 2  # the daily mean log return of GBM
        totals = counts * mu + self.volatility * np.sqrt(counts) * z  # (tickers, years)
        before = np.cumsum(totals, axis=1) - totals  # (tickers, years): log return from 1990 to each year's start
        anchor = before[:, ANCHOR_YEAR - _FIRST_YEAR, None]  # (tickers, 1)
        return totals, np.log(self.start_price) + before - anchor

    def _prices_in_year(
        self, keys: np.ndarray, year: int, at: np.ndarray, log_start: np.ndarray, total: np.ndarray
    ) -> np.ndarray:
        """(tickers, 5, len(at)): open, high, low, close, volume on the year's sessions number `at`.

        The closes follow the bridge over the whole year, so no value depends on the range asked."""
        n = len(_year_sessions(year))
        z = _normals(keys, _CLOSE, year, n)  # (tickers, n)
        returns = self.volatility * (z - z.mean(axis=1, keepdims=True)) + (total / n)[:, None]  # sums to total
        log_close = log_start[:, None] + np.cumsum(returns, axis=1)  # (tickers, n)
        log_previous = np.concatenate([log_start[:, None], log_close[:, :-1]], axis=1)  # (tickers, n)
        close, previous = np.exp(log_close[:, at]), np.exp(log_previous[:, at])  # (tickers, days)
        sigma = self.volatility
        gap = np.sqrt(3.0) * (2.0 * _uniforms(keys, _OPEN, year, at) - 1.0)  # mean 0, variance 1
        open_ = previous * np.exp(_OPEN_GAP * sigma * gap)
        high = np.maximum(open_, close) * np.exp(_WICK * sigma * _uniforms(keys, _HIGH, year, at))
        low = np.minimum(open_, close) * np.exp(-_WICK * sigma * _uniforms(keys, _LOW, year, at))
        volume = np.round(_VOLUME * (0.5 + _uniforms(keys, _VOLUME_STREAM, year, at)))
        return np.stack([open_, high, low, close, volume], axis=1)


def _ticker_key(seed: int, ticker: str) -> int:
    """A stable 64-bit key for (seed, ticker); Python's own hash() changes between processes."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{ticker}".encode(), digest_size=8).digest(), "little")


def _streams(keys: np.ndarray, stream: int, year: int, draw: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
    """(tickers, draws): `draw` from the generator of each (key, stream, year)."""
    return np.stack([draw(np.random.default_rng([int(key), stream, year])) for key in keys])


def _uniforms(keys: np.ndarray, stream: int, year: int, positions: np.ndarray) -> np.ndarray:
    """(tickers, positions) uniforms in [0, 1): the year's stream read at the sessions `positions`."""
    count = len(_year_sessions(year))
    return _streams(keys, stream, year, lambda generator: generator.random(count))[:, positions]


def _normals(keys: np.ndarray, stream: int, year: int, count: int) -> np.ndarray:
    """(tickers, count) standard normals: the first `count` of the stream (the same whatever `count`)."""
    return _streams(keys, stream, year, lambda generator: generator.standard_normal(count))


@cache
def _year_sessions(year: int) -> np.ndarray:
    """(sessions,) datetime64[D]: every NYSE session of the calendar year."""
    return np.array(sessions_between(date(year, 1, 1), date(year, 12, 31)), dtype="datetime64[D]")
