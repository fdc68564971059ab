"""Daily prices from Yahoo Finance through yfinance 1.x `download`, one call for all tickers.

What yfinance returns, and how each case is read (see yfinance/multi.py):

- a pandas frame indexed by a tz-naive DatetimeIndex named "Date", with MultiIndex columns
  ("Price", "Ticker"): Close, High, Low, Open, Volume per ticker, plus "Adj Close" when
  auto_adjust=False. Tickers come back upper-cased.
- tickers are reindexed to the union of dates, so a ticker that failed is all-NaN columns
  (and brings an "Adj Close" column even with auto_adjust=True); a ticker with a missing day
  has NaN there. Rows with a NaN close are dropped; a ticker with none left is a failure.
- when every ticker fails the frame has the columns but no rows.
- `download` logs per-ticker errors instead of raising (on the "yfinance" logger, a summary
  line "['XYZ', 'ABC']: reason" per distinct reason), but may raise (YFRateLimitError,
  network errors): then every ticker asked for fails with that one-line reason. Its log is
  kept out of ours during the call; the reason it gives a ticker (no timezone: DNS or an
  unknown symbol, rate limited, ...) becomes that ticker's failure reason.

With auto_adjust=True (the default) yfinance's Close is already split- and dividend-adjusted,
so adj_close = close. With auto_adjust=False, close is the raw close and adj_close is
Yahoo's "Adj Close". Rows and failures are keyed by each ticker as asked for ("spy" stays "spy").
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from forecaster.errors import one_line
from forecaster.price_frame import conform, empty_prices
from forecaster.prices.sources.base import FetchResult

#: yfinance's "Price" level names and the price-frame columns they fill.
_FIELDS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adj_close", "Volume": "volume"}

NO_DATA = "no data returned"
NO_ROWS = "no rows (unknown or delisted ticker?)"
NOT_RETURNED = "not in the downloaded data"


class YahooSource:
    """PriceSource over `yfinance.download`; `download` is injectable so tests never reach the network."""

    name = "yahoo"

    def __init__(
        self,
        download: Callable[..., pd.DataFrame | None] | None = None,
        *,
        auto_adjust: bool = True,
        timeout: float = 10,
    ) -> None:
        if download is None:
            import yfinance  # imported here: it is slow to import and only this source needs it

            download = yfinance.download
        self._download = download
        self.auto_adjust = auto_adjust
        self.timeout = timeout

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        wanted = list(dict.fromkeys(tickers))
        if not wanted:
            return FetchResult()
        with _yfinance_reasons() as reasons:
            result = self._fetch(wanted, start, end)
        for ticker in result.failures:
            if ticker.upper() in reasons and result.failures[ticker] in (NO_DATA, NO_ROWS, NOT_RETURNED):
                result.failures[ticker] = f"{result.failures[ticker]}: {reasons[ticker.upper()]}"
        return result

    def _fetch(self, wanted: list[str], start: date, end: date) -> FetchResult:
        try:
            with warnings.catch_warnings():
                # yfinance's own pandas deprecation notices: noise in the daemon's log, nothing to act on.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"yfinance\.")
                warnings.filterwarnings("ignore", category=FutureWarning, module=r"yfinance\.")
                frame = self._download(
                    tickers=wanted,
                    start=start.isoformat(),
                    end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                    auto_adjust=self.auto_adjust,
                    progress=False,
                    threads=True,
                    group_by="column",
                    multi_level_index=True,
                    timeout=self.timeout,
                )
        except Exception as error:  # any download error fails these tickers, never the run
            reason = f"download failed: {one_line(error)}"
            return FetchResult(failures={ticker: reason for ticker in wanted})
        if frame is None or (isinstance(frame, pd.DataFrame) and frame.empty):
            return FetchResult(failures={ticker: NO_DATA for ticker in wanted})
        if not _is_download_frame(frame):
            reason = f"unexpected download result ({type(frame).__name__} without (Price, Ticker) Close columns)"
            return FetchResult(failures={ticker: reason for ticker in wanted})
        return self._normalised(frame, wanted, start, end)

    def _normalised(self, frame: pd.DataFrame, wanted: list[str], start: date, end: date) -> FetchResult:
        """The wide (Price, Ticker) frame as long price-frame rows for the tickers asked for."""
        returned = set(frame.columns.get_level_values("Ticker"))
        failures = {ticker: NOT_RETURNED for ticker in wanted if ticker.upper() not in returned}
        present = [ticker for ticker in wanted if ticker not in failures]

        index = frame.index
        if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
            index = index.tz_localize(None)  # keeps the exchange's wall-clock date
        days = pd.DatetimeIndex(index).to_numpy().astype("datetime64[D]")  # (dates,)
        fields = set(frame.columns.get_level_values("Price"))
        columns: dict[str, Any] = {
            "ticker": pl.Series(present, dtype=pl.String).gather(np.repeat(np.arange(len(present)), len(days))),
            "session_date": np.tile(days, len(present)),
        }
        for field, column in _FIELDS.items():
            if field == "Adj Close" and self.auto_adjust:
                continue  # only a failed ticker's placeholder; adj_close = close below
            if field in fields:
                block = frame.xs(field, axis=1, level="Price").reindex(columns=[t.upper() for t in present])
                columns[column] = block.to_numpy(dtype=np.float64, na_value=np.nan).T.ravel()  # ticker-major
        long = pl.DataFrame(columns, nan_to_null=True).with_columns(pl.col("session_date").cast(pl.Date))
        if self.auto_adjust:
            long = long.with_columns(pl.col("close").alias("adj_close"))
        long = (
            conform(long)
            .filter(pl.col("close").is_not_null() & pl.col("session_date").is_between(start, end))
            # yfinance has returned a day twice (a live row beside the final one): keep the later row.
            .unique(["ticker", "session_date"], keep="last", maintain_order=True)
            .sort("ticker", "session_date")
        )
        with_rows = set(long["ticker"].unique())
        failures.update({ticker: NO_ROWS for ticker in present if ticker not in with_rows})
        return FetchResult(prices=long if long.height else empty_prices(), failures=failures)


#: yfinance's summary of failed tickers: "['XYZ', 'ABC']: YFTzMissingError('possibly delisted; ...')".
_FAILED_TICKERS = re.compile(r"^\[(?P<tickers>[^\]]*)\]: (?P<reason>.+)$", re.DOTALL)


class _ReasonsHandler(logging.Handler):
    """Collects {TICKER: reason} from yfinance's error log lines."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reasons: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = _FAILED_TICKERS.match(record.getMessage().strip())
        if match is None:
            return
        reason = " ".join(match["reason"].split())[:300]
        for ticker in re.findall(r"'([^']*)'", match["tickers"]):
            self.reasons[ticker.upper()] = reason


@contextmanager
def _yfinance_reasons() -> Iterator[dict[str, str]]:
    """During the block, yfinance's log goes here instead of the process's (its "N Failed
    downloads" lines would otherwise print one ERROR per ticker on every retry); yields the
    per-ticker reasons it gave."""
    logger = logging.getLogger("yfinance")
    handler = _ReasonsHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.reasons
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _is_download_frame(frame: object) -> bool:
    return (
        isinstance(frame, pd.DataFrame)
        and list(frame.columns.names) == ["Price", "Ticker"]
        and "Close" in frame.columns.get_level_values("Price")
    )
