"""Fakes for the price sources: synthetic prices with chosen faults, and a stand-in for yfinance.download.

`FaultySource` serves SyntheticSource's prices, except that chosen tickers fail the way
yfinance reports an unknown ticker (on every call, or only on the first few), chosen
(ticker, session) rows are missing, and nothing exists before a listing date; it records every
call. `FakeDownload` stands in for `yfinance.download`, batch by batch, with what yfinance logs
(frames: tests/support/yfinance_frames.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from forecaster.prices.sources.base import FetchResult
from forecaster.prices.sources.synthetic import SyntheticSource

if TYPE_CHECKING:
    import pandas as pd

#: The reason YahooSource gives a ticker yfinance returned no rows for (forecaster.prices.sources.yahoo.NO_ROWS).
UNKNOWN_TICKER = "no rows (unknown or delisted ticker?)"


class Call(NamedTuple):
    """One fetch asked of a fake source."""

    tickers: tuple[str, ...]
    start: date
    end: date


class FaultySource:
    """SyntheticSource(seed)'s prices with faults: the `failing` tickers fail with `reason` (on every
    call, or only on the first `failing_calls`), the `missing` (ticker, session) rows are left out,
    and nothing before `listed_since` exists. Records each fetch in `calls`."""

    def __init__(
        self,
        *,
        seed: int = 0,
        name: str = "synthetic",
        failing: Iterable[str] = (),
        reason: str = UNKNOWN_TICKER,
        failing_calls: int | None = None,
        missing: Iterable[tuple[str, date]] = (),
        listed_since: date | None = None,
    ) -> None:
        self.inner = SyntheticSource(seed=seed)
        self.name = name
        self.failing, self.reason, self.failing_calls = set(failing), reason, failing_calls
        self.missing, self.listed_since = set(missing), listed_since
        self.calls: list[Call] = []

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        self.calls.append(Call(tuple(tickers), start, end))
        still_failing = self.failing_calls is None or len(self.calls) <= self.failing_calls
        failing = self.failing if still_failing else set()
        result = self.inner.fetch([t for t in tickers if t not in failing], start, end)
        for ticker, day in self.missing:
            result.prices = result.prices.filter(
                (result.prices["ticker"] != ticker) | (result.prices["session_date"] != day)
            )
        if self.listed_since is not None:
            result.prices = result.prices.filter(result.prices["session_date"] >= self.listed_since)
        result.failures |= {t: self.reason for t in tickers if t in failing}
        return result


class FakeDownload:
    """Stands in for yfinance.download: records each call's keywords, logs `logged` on the "yfinance"
    logger at ERROR (as yfinance logs failed tickers: "['XYZ', 'ABC']: reason"), then returns (or
    raises) `result`; a callable `result` is asked, with the call's tickers, what to give that call
    (for a fetch in batches)."""

    def __init__(
        self,
        result: pd.DataFrame | Exception | None | Callable[[list[str]], pd.DataFrame | Exception | None],
        *,
        logged: Sequence[str] = (),
    ) -> None:
        self.result = result
        self.logged = list(logged)
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        logger = logging.getLogger("yfinance")
        for line in self.logged:
            logger.error(line)
        result = self.result(list(kwargs["tickers"])) if callable(self.result) else self.result
        if isinstance(result, Exception):
            raise result
        return result
