"""Daily bars and corporate actions from Yahoo Finance through yfinance 1.x `download`, in batches.

A fetch goes as one `download(..., actions=True)` call per batch of at most `batch_size` tickers
(200 by default), and the batches' rows and failures are put together. What yfinance returns, and
how each case is read (see yfinance/multi.py):

- a pandas frame indexed by a tz-naive DatetimeIndex named "Date", with MultiIndex columns
  ("Price", "Ticker"): Close, High, Low, Open, Volume, Dividends and Stock Splits per ticker, plus
  "Adj Close" when auto_adjust=False. Tickers come back upper-cased. Dividends is the cash dividend
  going ex that day and Stock Splits the split ratio (2.0 for 2-for-1, 0.1 for 1-for-10), 0 on
  other days; they become `dividends` and `stock_splits` as given (0 stays 0, NaN becomes null).
- tickers are reindexed to the union of dates, so a ticker that failed is all-NaN columns
  (and brings an "Adj Close" column even with auto_adjust=True, but no action columns); a ticker
  with a missing day has NaN there. Rows with a NaN close are dropped, whatever their actions;
  a ticker with none left is a failure.
- when every ticker fails the frame has the columns but no rows.
- `download` logs per-ticker errors instead of raising (on the "yfinance" logger: a summary
  line "['XYZ', 'ABC']: reason" per distinct reason, and "Failed to get ticker 'XYZ' reason: ..."
  when a request itself failed), but may raise. Its log is kept out of ours during the call.

Every failure reason is one line of at most 300 characters, and starts with one of these
constants of forecaster.prices.sources.failures, so callers can tell the cases apart (`failure_kind`):

- RATE_LIMITED: `download` raised YFRateLimitError (or an error saying HTTP 429 / Too Many
  Requests), or yfinance logged that for a ticker of the batch: every ticker of that batch without
  rows fails so (under a rate limit Yahoo's "no data" says nothing about the ticker). Tickers that
  did return rows keep them.
- NETWORK: `download` raised a connection-type error (ConnectionError of requests or curl_cffi,
  a timeout, socket.gaierror); or yfinance logged, for a ticker, a failed request or a reason that
  reads as a network error (what yfinance 1.7 logs when DNS is blocked and the ticker's timezone
  is not cached yet: "Failed to get ticker 'XYZ' reason: ... Could not resolve host ...", or
  "DNSError('...')"); or every ticker of a batch of two or more failed with one and the same logged
  "possibly delisted" reason (what it logs for each ticker when DNS is blocked and the timezones
  are cached: "possibly delisted; no price data found (1d ... -> ...)", or "... no timezone
  found"). That last rule also reads a batch made only of unknown symbols, or one over a range
  without a session, as NETWORK: the log cannot tell those apart.
- NO_DATA / NO_ROWS / NOT_RETURNED: nothing for this ticker while the download itself worked
  (an empty frame, a ticker of all-NaN closes, a ticker missing from the columns), followed by
  yfinance's logged reason for it when there is one: one ticker failing among others that return
  rows, or a batch of one ticker.
- "download failed: ..." and "unexpected download result ...": anything else.

With auto_adjust=True (the default) yfinance's Close is already split- and dividend-adjusted,
so adj_close = close. With auto_adjust=False, close is the raw close and adj_close is
Yahoo's "Adj Close". Rows and failures are keyed by each ticker as asked for ("spy" stays "spy").
"""

from __future__ import annotations

import logging
import re
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from forecaster.errors import one_line
from forecaster.price_frame import conform, empty_prices
from forecaster.prices.sources.base import FetchResult
from forecaster.prices.sources.failures import (
    DOWNLOAD_FAILED,
    NETWORK,
    NO_DATA,
    NO_ROWS,
    NOT_RETURNED,
    RATE_LIMITED,
)

#: yfinance's "Price" level names and the price-frame columns they fill.
_FIELDS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
    "Dividends": "dividends",
    "Stock Splits": "stock_splits",
}

#: The longest failure reason.
MAX_REASON = 300


class YahooSource:
    """PriceSource over `yfinance.download`, at most `batch_size` tickers a call; `download` is
    injectable so tests never reach the network."""

    name = "yahoo"

    def __init__(
        self,
        download: Callable[..., pd.DataFrame | None] | None = None,
        *,
        auto_adjust: bool = True,
        timeout: float = 10,
        batch_size: int = 200,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if download is None:
            import yfinance  # imported here: it is slow to import and only this source needs it

            download = yfinance.download
        self._download = download
        self.auto_adjust = auto_adjust
        self.timeout = timeout
        self.batch_size = batch_size

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        wanted = list(dict.fromkeys(tickers))
        results = [
            self._fetch_batch(wanted[i : i + self.batch_size], start, end)
            for i in range(0, len(wanted), self.batch_size)
        ]
        frames = [result.prices for result in results if result.prices.height]
        prices = pl.concat(frames).sort("ticker", "session_date") if frames else empty_prices()
        return FetchResult(prices=prices, failures={t: r for result in results for t, r in result.failures.items()})

    def _fetch_batch(self, batch: list[str], start: date, end: date) -> FetchResult:
        with _yfinance_log() as log:
            try:
                with warnings.catch_warnings():
                    # yfinance's own pandas deprecation notices: noise in the daemon's log, nothing to act on.
                    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"yfinance\.")
                    warnings.filterwarnings("ignore", category=FutureWarning, module=r"yfinance\.")
                    frame = self._download(
                        tickers=batch,
                        start=start.isoformat(),
                        end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                        actions=True,
                        auto_adjust=self.auto_adjust,
                        progress=False,
                        threads=True,
                        group_by="column",
                        multi_level_index=True,
                        timeout=self.timeout,
                    )
            except Exception as error:  # any download error fails these tickers, never the run
                return FetchResult(failures=dict.fromkeys(batch, _raised_reason(error)))
        if frame is None or (isinstance(frame, pd.DataFrame) and frame.empty):
            result = FetchResult(failures=dict.fromkeys(batch, NO_DATA))
        elif not _is_download_frame(frame):
            reason = f"unexpected download result ({type(frame).__name__} without (Price, Ticker) Close columns)"
            return FetchResult(failures=dict.fromkeys(batch, reason))
        else:
            result = self._normalised(frame, batch, start, end)
        _explain(result.failures, batch, log)
        return result

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
        for field_name, column in _FIELDS.items():
            if field_name == "Adj Close" and self.auto_adjust:
                continue  # only a failed ticker's placeholder; adj_close = close below
            if field_name in fields:
                block = frame.xs(field_name, axis=1, level="Price").reindex(columns=[t.upper() for t in present])
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


def _reason(start: str, detail: str | None = None) -> str:
    """`start: detail` on one line, at most MAX_REASON characters."""
    text = start if not detail else f"{start}: {detail}"
    return " ".join(text.split())[:MAX_REASON]


#: Words of a rate limit in an error or a yfinance log reason.
_RATE_LIMIT_TEXT = re.compile(r"too many requests|rate[ -]?limit|\b429\b", re.IGNORECASE)
#: Words of a network failure (DNS, refused or reset connections, timeouts; curl's codes for those).
_NETWORK_TEXT = re.compile(
    r"resolve|name resolution|name or service not known|nodename nor servname|getaddrinfo"
    r"|connection (?:refused|reset|aborted|error)|network is unreachable|no route to host"
    r"|timed out|timeout|max retries exceeded|curl: \((?:5|6|7|28|35|52|55|56)\)",
    re.IGNORECASE,
)
#: Exception classes (by name, anywhere in the class's bases) that mean the network failed:
#: requests' and curl_cffi's ConnectionError, Timeout (and their subclasses), curl_cffi's DNSError.
_NETWORK_CLASSES = {"ConnectionError", "Timeout", "TimeoutError", "DNSError", "ProxyError", "NewConnectionError"}
#: The repr of such an exception, as yfinance logs one it caught: "DNSError('Failed to perform, ...')".
_NETWORK_REPR = re.compile(r"^\w*(?:ConnectionError|Timeout|TimeoutError|DNSError|ProxyError|gaierror)\(")


def _raised_reason(error: Exception) -> str:
    """The reason every ticker of a batch fails with when `download` raised `error`."""
    chain = _error_chain(error)
    if any(_is_rate_limit(e) for e in chain):
        return _reason(RATE_LIMITED, one_line(error))
    if any(_is_network(e) for e in chain):
        return _reason(NETWORK, one_line(error))
    return _reason(DOWNLOAD_FAILED, one_line(error))


def _error_chain(error: BaseException) -> list[BaseException]:
    """The error and those it was raised from or during (a requests ConnectionError wraps urllib3's)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_rate_limit(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    status = getattr(getattr(error, "response", None), "status_code", None)
    return "YFRateLimitError" in names or status == 429 or bool(_RATE_LIMIT_TEXT.search(str(error)))


def _is_network(error: BaseException) -> bool:
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror, socket.herror)):
        return True
    return bool(_NETWORK_CLASSES & {cls.__name__ for cls in type(error).__mro__})


def _explain(failures: dict[str, str], batch: list[str], log: _Log) -> None:
    """Rewrites the batch's "nothing came back" failures with what yfinance logged: a rate limit or a
    network failure becomes RATE_LIMITED or NETWORK (see the module docstring); any other reason is
    added to the failure."""
    failed = [ticker for ticker in batch if failures.get(ticker) in (NO_DATA, NO_ROWS, NOT_RETURNED)]
    if not failed:
        return
    logged = [*log.reasons.values(), *log.requests.values()]
    rate_limit = next((reason for reason in logged if _RATE_LIMIT_TEXT.search(reason)), None)
    if rate_limit is not None:
        failures.update(dict.fromkeys(failed, _reason(RATE_LIMITED, rate_limit)))
        return
    reasons = {ticker: log.reasons.get(ticker.upper()) for ticker in failed}
    same = set(reasons.values())
    only = next(iter(same)) if len(same) == 1 else None
    all_possibly_delisted = len(failed) == len(batch) > 1 and only is not None and "possibly delisted" in only.lower()
    for ticker in failed:
        request, reason = log.requests.get(ticker.upper()), reasons[ticker]
        if request is not None and _says_network(request):
            failures[ticker] = _reason(NETWORK, request)
        elif reason is not None and (_says_network(reason) or all_possibly_delisted):
            failures[ticker] = _reason(NETWORK, reason)
        elif reason is not None:
            failures[ticker] = _reason(failures[ticker], reason)


def _says_network(text: str) -> bool:
    """Whether a logged reason reads as a network failure: a connection-type exception's repr
    ("DNSError('...')", as yfinance logs an error it caught) or the words of one."""
    return bool(_NETWORK_REPR.match(text) or _NETWORK_TEXT.search(text))


#: yfinance's summary of failed tickers: "['XYZ', 'ABC']: YFTzMissingError('possibly delisted; ...')".
_FAILED_TICKERS = re.compile(r"^\[(?P<tickers>[^\]]*)\]: (?P<reason>.+)$", re.DOTALL)
#: yfinance's line for a request that failed (the timezone lookup): "Failed to get ticker 'XYZ' reason: ...".
_FAILED_REQUEST = re.compile(r"^Failed to get ticker '(?P<ticker>[^']*)' reason: (?P<reason>.+)$", re.DOTALL)


@dataclass
class _Log:
    """What yfinance logged during one download: {TICKER: reason} from its summary lines, and
    {TICKER: error} from its failed-request lines."""

    reasons: dict[str, str] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)


class _LogHandler(logging.Handler):
    """Collects a _Log from yfinance's error log lines."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.log = _Log()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip()
        if match := _FAILED_TICKERS.match(message):
            reason = _reason(match["reason"])
            for ticker in re.findall(r"'([^']*)'", match["tickers"]):
                self.log.reasons[ticker.upper()] = reason
        elif match := _FAILED_REQUEST.match(message):
            self.log.requests[match["ticker"].upper()] = _reason(match["reason"])


@contextmanager
def _yfinance_log() -> Iterator[_Log]:
    """During the block, yfinance's log goes here instead of the process's (its "N Failed
    downloads" lines would otherwise print one ERROR per ticker on every retry); yields what it logged."""
    logger = logging.getLogger("yfinance")
    handler = _LogHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.log
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _is_download_frame(frame: object) -> bool:
    return (
        isinstance(frame, pd.DataFrame)
        and list(frame.columns.names) == ["Price", "Ticker"]
        and "Close" in frame.columns.get_level_values("Price")
    )
