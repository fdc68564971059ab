"""YahooSource: yfinance's wide (Price, Ticker) frame in, long price-frame rows and per-ticker failures out.

No test reaches the network: `download` is a fake returning frames assembled the way
yfinance 1.x `download` assembles them (yfinance/multi.py; tests/support/yfinance_frames.py),
and logging what yfinance logs for failed tickers. Some tests run yfinance's own `download`
instead, with only `Ticker.history` replaced (to check that assembly) or with every request to
Yahoo raising what a blocked DNS or a rate limit raises (to check what it logs then).

The rules: one download per batch of at most `batch_size` tickers; bars, dividends and splits
as yfinance gives them; every failure a one-line reason of at most 300 characters that starts
with RATE_LIMITED, NETWORK, NO_DATA / NO_ROWS / NOT_RETURNED or "download failed", which
`failure_kind` tells apart.
"""

from __future__ import annotations

import logging
import socket
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
import requests.exceptions
import yfinance
import yfinance.cache
import yfinance.data
import yfinance.multi
from curl_cffi.requests import exceptions as curl_errors
from requests.exceptions import HTTPError
from yfinance.exceptions import YFRateLimitError

from forecaster.errors import one_line
from forecaster.price_frame import SOURCE_SCHEMA
from forecaster.prices.sources.failures import NETWORK, NO_DATA, NO_ROWS, NOT_RETURNED, RATE_LIMITED, failure_kind
from forecaster.prices.sources.yahoo import YahooSource
from tests.support.fakes import FakeDownload
from tests.support.yfinance_frames import download_frame, history


def fetch(result, tickers, start=date(2024, 1, 2), end=date(2024, 1, 5), *, logged=(), **options):
    """YahooSource(**options).fetch over a FakeDownload giving `result` and logging `logged` lines."""
    fake = FakeDownload(result, logged=logged)
    return YahooSource(fake, **options).fetch(tickers, start, end), fake


# --- the fake is faithful ---------------------------------------------------------------------


@pytest.fixture
def real_download_over(monkeypatch):
    """Makes yfinance's own `download` assemble the given histories (None: that ticker fails as an
    unknown one does), with only `Ticker.history` replaced: it honours `actions` as yfinance does."""

    def install(histories):
        class FakeTicker:
            def __init__(self, ticker):
                self.ticker, self._price_history = ticker, None

            def history(self, actions=True, **kwargs):
                if histories[self.ticker] is None:
                    raise RuntimeError(f"${self.ticker}: possibly delisted; no price data found")
                frame = histories[self.ticker].copy()
                return frame if actions else frame.drop(columns=["Dividends", "Stock Splits"])

        monkeypatch.setattr(yfinance.multi, "Ticker", FakeTicker)
        monkeypatch.setattr(yfinance.multi, "YfData", lambda session=None: None)
        monkeypatch.setattr(yfinance.multi, "new_session", lambda: None)

    return install


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")  # yfinance 1.7 on pandas 3.1
def test_fake_frames_match_what_yfinance_download_assembles(real_download_over):
    histories = {
        "AAA": history({"2024-01-02": 10.0, "2024-01-03": 11.0}, dividends={"2024-01-03": 0.25}),
        "BBB": history({"2024-01-03": 20.0, "2024-01-04": 21.0}, splits={"2024-01-04": 2.0}),
        "BAD": None,
    }
    real_download_over(histories)
    real = YahooSource().fetch(["AAA", "BBB", "BAD"], date(2024, 1, 2), date(2024, 1, 4))  # the real download()
    faked = YahooSource(lambda **kwargs: download_frame(histories)).fetch(
        ["AAA", "BBB", "BAD"], date(2024, 1, 2), date(2024, 1, 4)
    )
    assert real.prices.equals(faked.prices)
    assert faked.failures == {"BAD": NO_ROWS}
    # The real download also logs why, which becomes the reason.
    assert real.failures == {"BAD": f"{NO_ROWS}: RuntimeError('possibly delisted; no price data found')"}
    pd.testing.assert_frame_equal(
        yfinance.download(["AAA", "BBB", "BAD"], start="2024-01-02", end="2024-01-05", progress=False, actions=True),
        download_frame(histories),
    )


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")
def test_without_actions_yfinance_download_has_no_action_columns(real_download_over):
    histories = {"AAA": history({"2024-01-02": 10.0}, dividends={"2024-01-02": 0.25})}
    real_download_over(histories)
    frame = yfinance.download(["AAA"], start="2024-01-02", end="2024-01-03", progress=False)
    assert set(frame.columns.get_level_values("Price")) == {"Open", "High", "Low", "Close", "Volume"}
    pd.testing.assert_frame_equal(frame, download_frame({"AAA": history({"2024-01-02": 10.0}, actions=False)}))


DNS_ERROR = "Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com"


@pytest.fixture
def every_yahoo_request(monkeypatch):
    """Runs yfinance's own download with every request to Yahoo raising `error` (nothing reaches the
    network) and a timezone cache holding `timezones` ({TICKER: zone})."""

    class TzCache:
        def __init__(self, zones):
            self.zones = dict(zones)

        def lookup(self, ticker):
            return self.zones.get(ticker)

        def store(self, ticker, zone):
            self.zones[ticker] = zone

    def install(error, timezones=()):
        def request(self, url, *args, **kwargs):
            raise error

        tz_cache = TzCache(timezones)
        monkeypatch.setattr(yfinance.cache, "get_tz_cache", lambda: tz_cache)
        monkeypatch.setattr(yfinance.data.YfData, "_make_request", request)

    return install


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")
def test_yfinances_own_download_with_dns_blocked_and_no_cached_timezones_is_a_network_failure(every_yahoo_request):
    every_yahoo_request(curl_errors.DNSError(DNS_ERROR))
    result = YahooSource().fetch(["SPY", "QQQ"], date(2024, 1, 2), date(2024, 1, 5))
    assert result.prices.is_empty()
    assert result.failures == {"SPY": f"{NETWORK}: {DNS_ERROR}", "QQQ": f"{NETWORK}: {DNS_ERROR}"}


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")
def test_yfinances_own_download_with_dns_blocked_and_cached_timezones_is_a_network_failure(every_yahoo_request):
    every_yahoo_request(
        curl_errors.DNSError(DNS_ERROR), timezones={"SPY": "America/New_York", "QQQ": "America/New_York"}
    )
    result = YahooSource().fetch(["SPY", "QQQ"], date(2024, 1, 2), date(2024, 1, 5))
    reason = f"{NETWORK}: possibly delisted; no price data found (1d 2024-01-02 -> 2024-01-06)"
    assert result.failures == {"SPY": reason, "QQQ": reason}


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")
def test_yfinances_own_download_under_http_429_fails_every_ticker_as_rate_limited(every_yahoo_request):
    every_yahoo_request(YFRateLimitError())
    result = YahooSource().fetch(["SPY", "QQQ"], date(2024, 1, 2), date(2024, 1, 5))
    reason = f"{RATE_LIMITED}: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"
    assert result.failures == {"SPY": reason, "QQQ": reason}


# --- the call --------------------------------------------------------------------------------


def test_calls_download_once_with_actions_an_exclusive_end_and_no_progress_bar():
    _, fake = fetch(download_frame({"SPY": history({"2024-01-02": 1.0})}), ["SPY", "QQQ"], timeout=3)
    assert fake.calls == [
        {
            "tickers": ["SPY", "QQQ"],
            "start": "2024-01-02",
            "end": "2024-01-06",
            "actions": True,
            "auto_adjust": True,
            "progress": False,
            "threads": True,
            "group_by": "column",
            "multi_level_index": True,
            "timeout": 3,
        }
    ]


def test_no_tickers_means_no_download():
    result, fake = fetch(None, [])
    assert fake.calls == []
    assert result.prices.is_empty() and result.failures == {}


def test_a_ticker_asked_twice_is_downloaded_once():
    _, fake = fetch(download_frame({"SPY": history({"2024-01-02": 1.0})}), ["SPY", "SPY"])
    assert fake.calls[0]["tickers"] == ["SPY"]


# --- batches ---------------------------------------------------------------------------------


def frame_for(tickers):
    """A download of one close per ticker, for the tickers of the call."""
    return download_frame({ticker: history({"2024-01-02": 1.0 + i}) for i, ticker in enumerate(tickers)})


def test_450_tickers_go_as_three_downloads_of_at_most_200():
    tickers = [f"T{i:03d}" for i in range(450)]
    result, fake = fetch(frame_for, tickers)
    assert [len(call["tickers"]) for call in fake.calls] == [200, 200, 50]
    assert [t for call in fake.calls for t in call["tickers"]] == tickers  # in order, each once
    assert result.failures == {}
    assert result.prices.height == 450
    assert result.prices["ticker"].to_list() == sorted(tickers)


def test_batch_size_sets_the_most_tickers_per_download():
    _, fake = fetch(frame_for, ["A", "B", "C", "D", "E"], batch_size=2)
    assert [call["tickers"] for call in fake.calls] == [["A", "B"], ["C", "D"], ["E"]]


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        YahooSource(FakeDownload(None), batch_size=0)


def test_a_failed_batch_fails_only_its_own_tickers():
    def download(tickers):
        return YFRateLimitError() if "C" in tickers else frame_for(tickers)

    result, _ = fetch(download, ["A", "B", "C", "D", "E"], batch_size=2)
    assert sorted(result.prices["ticker"]) == ["A", "B", "E"]
    assert set(result.failures) == {"C", "D"}
    assert all(failure_kind(reason) == "rate_limited" for reason in result.failures.values())


def test_each_batch_explains_its_own_failures_with_what_yfinance_logged_during_it():
    def download(tickers):
        logging.getLogger("yfinance").error(f"[{tickers[1]!r}]: reason for {tickers[1]}")
        return download_frame({tickers[0]: history({"2024-01-02": 1.0}), tickers[1]: None})

    result, _ = fetch(download, ["A", "B", "C", "D"], batch_size=2)
    assert result.failures == {"B": f"{NO_ROWS}: reason for B", "D": f"{NO_ROWS}: reason for D"}


# --- normalising -----------------------------------------------------------------------------


def test_one_ticker_becomes_long_rows_with_adj_close_equal_to_close_and_zero_actions():
    frame = download_frame({"SPY": history({"2024-01-02": 470.0, "2024-01-03": 468.0})})
    result, _ = fetch(frame, ["SPY"])
    assert result.failures == {}
    assert result.prices.schema == pl.Schema(SOURCE_SCHEMA)
    assert result.prices.rows(named=True) == [
        {"ticker": "SPY", "session_date": date(2024, 1, 2), "open": 469.5, "high": 471.0, "low": 469.0,
         "close": 470.0, "adj_close": 470.0, "volume": 1000.0, "dividends": 0.0, "stock_splits": 0.0},
        {"ticker": "SPY", "session_date": date(2024, 1, 3), "open": 467.5, "high": 469.0, "low": 467.0,
         "close": 468.0, "adj_close": 468.0, "volume": 2000.0, "dividends": 0.0, "stock_splits": 0.0},
    ]  # fmt: skip


def test_dividends_and_splits_come_on_their_dates():
    frame = download_frame(
        {
            "KO": history({"2024-01-02": 60.0, "2024-01-03": 61.0}, dividends={"2024-01-03": 0.485}),
            "NVDA": history({"2024-01-02": 48.0, "2024-01-03": 47.5}, splits={"2024-01-03": 10.0}),
            "REV": history({"2024-01-02": 3.0, "2024-01-03": 30.0}, splits={"2024-01-03": 0.1}),  # 1-for-10
        }
    )
    result, _ = fetch(frame, ["KO", "NVDA", "REV"])
    assert result.prices.select("ticker", "session_date", "dividends", "stock_splits").rows() == [
        ("KO", date(2024, 1, 2), 0.0, 0.0),
        ("KO", date(2024, 1, 3), 0.485, 0.0),
        ("NVDA", date(2024, 1, 2), 0.0, 0.0),
        ("NVDA", date(2024, 1, 3), 0.0, 10.0),
        ("REV", date(2024, 1, 2), 0.0, 0.0),
        ("REV", date(2024, 1, 3), 0.0, 0.1),
    ]


def test_actions_are_null_where_yfinance_gives_none():
    frame = download_frame({"SPY": history({"2024-01-02": 470.0}, actions=False)})  # a download without actions
    result, _ = fetch(frame, ["SPY"])
    assert result.prices.select("dividends", "stock_splits").row(0) == (None, None)


def test_actions_do_not_keep_a_day_without_a_close():
    with_dividend = history({"2024-01-02": 60.0, "2024-01-03": 61.0}, dividends={"2024-01-03": 0.5})
    with_dividend.loc[with_dividend.index[1], "Close"] = np.nan
    result, _ = fetch(download_frame({"KO": with_dividend}), ["KO"])
    assert result.prices.select("session_date", "dividends").rows() == [(date(2024, 1, 2), 0.0)]


def test_several_tickers_keep_only_their_own_dates():
    frame = download_frame(
        {
            "SPY": history({"2024-01-02": 470.0, "2024-01-03": 468.0}),
            "QQQ": history({"2024-01-03": 400.0, "2024-01-04": 401.0}),
        }
    )
    result, _ = fetch(frame, ["SPY", "QQQ"])
    assert result.failures == {}
    assert result.prices.select("ticker", "session_date", "close").rows() == [
        ("QQQ", date(2024, 1, 3), 400.0),
        ("QQQ", date(2024, 1, 4), 401.0),
        ("SPY", date(2024, 1, 2), 470.0),
        ("SPY", date(2024, 1, 3), 468.0),
    ]


def test_without_auto_adjust_close_is_raw_and_adj_close_is_yahoos():
    frame = download_frame({"SPY": history({"2024-01-02": 100.0}, auto_adjust=False)})
    result, fake = fetch(frame, ["SPY"], auto_adjust=False)
    assert fake.calls[0]["auto_adjust"] is False
    assert result.prices.select("close", "adj_close").row(0) == (100.0, 90.0)


def test_a_ticker_asked_in_lower_case_is_found_and_keyed_as_asked():
    result, _ = fetch(download_frame({"SPY": history({"2024-01-02": 1.0})}), ["spy"])
    assert result.failures == {}
    assert result.prices["ticker"].to_list() == ["spy"]


def test_rows_outside_the_asked_range_are_dropped():
    frame = download_frame({"SPY": history({"2024-01-01": 1.0, "2024-01-02": 2.0, "2024-01-06": 3.0})})
    result, _ = fetch(frame, ["SPY"], start=date(2024, 1, 2), end=date(2024, 1, 5))
    assert result.prices["close"].to_list() == [2.0]


# --- failures, never a crash: rate limits ------------------------------------------------------

RATE_LIMIT_LOG = "['SPY', 'QQQ']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"


def test_a_rate_limit_raised_by_download_fails_every_ticker_as_rate_limited():
    result, _ = fetch(YFRateLimitError(), ["SPY", "QQQ"])
    assert result.prices.is_empty()
    reason = f"{RATE_LIMITED}: YFRateLimitError: Too Many Requests. Rate limited. Try after a while."
    assert result.failures == {"SPY": reason, "QQQ": reason}


@pytest.mark.parametrize(
    "error",
    [
        HTTPError("429 Client Error: Too Many Requests for url: https://query2.finance.yahoo.com/v8/finance/chart/SPY"),
        RuntimeError("Rate limited by Yahoo"),
    ],
    ids=["http-429", "rate-limited-text"],
)
def test_an_error_that_says_http_429_or_rate_limited_is_a_rate_limit(error):
    result, _ = fetch(error, ["SPY"])
    assert result.failures["SPY"].startswith(f"{RATE_LIMITED}: ")


def test_a_rate_limit_yfinance_logs_fails_every_ticker_of_the_batch_without_rows_as_rate_limited():
    # yfinance 1.x: each ticker's request got HTTP 429; download logs it and returns an empty frame.
    result, _ = fetch(download_frame({"SPY": None, "QQQ": None}), ["SPY", "QQQ"], logged=[RATE_LIMIT_LOG])
    reason = f"{RATE_LIMITED}: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"
    assert result.failures == {"SPY": reason, "QQQ": reason}


def test_under_a_rate_limit_a_ticker_yfinance_gave_another_reason_is_rate_limited_too():
    logged = ["['SPY']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')",
              "['QQQ']: possibly delisted; no price data found  (1d 2024-01-02 -> 2024-01-04)"]  # fmt: skip
    result, _ = fetch(
        download_frame({"SPY": None, "QQQ": None, "IWM": history({"2024-01-02": 1.0})}),
        ["SPY", "QQQ", "IWM"],
        logged=logged,
    )
    assert {t: failure_kind(r) for t, r in result.failures.items()} == {"SPY": "rate_limited", "QQQ": "rate_limited"}
    assert result.prices["ticker"].to_list() == ["IWM"]  # what did come back is kept


# --- failures, never a crash: the network ------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("Failed to resolve\n  'query2.finance.yahoo.com'"),
        requests.exceptions.ConnectionError("HTTPSConnectionPool(host='query2.finance.yahoo.com', port=443)"),
        curl_errors.DNSError("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com"),
        curl_errors.Timeout("Failed to perform, curl: (28) Operation timed out after 10001 milliseconds"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        TimeoutError("timed out"),
    ],
    ids=["builtin-connection", "requests-connection", "curl-dns", "curl-timeout", "gaierror", "timeout"],
)
def test_a_connection_error_raised_by_download_fails_every_ticker_as_a_network_failure(error):
    result, _ = fetch(error, ["SPY", "QQQ"])
    reason = f"{NETWORK}: {one_line(error)}"
    assert result.failures == {"SPY": reason, "QQQ": reason}


def test_a_network_failure_reason_is_one_line_of_at_most_300_characters():
    result, _ = fetch(ConnectionError("Failed to resolve\n  'query2.finance.yahoo.com'" + " x" * 400), ["SPY"])
    reason = result.failures["SPY"]
    assert reason.startswith(f"{NETWORK}: ConnectionError: Failed to resolve 'query2.finance.yahoo.com' x x")
    assert len(reason) == 300 and "\n" not in reason


def test_an_error_raised_from_a_connection_error_is_a_network_failure():
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except OSError as dns:
            raise RuntimeError("chart request failed") from dns
    except RuntimeError as error:
        wrapped = error
    result, _ = fetch(wrapped, ["SPY"])
    assert result.failures["SPY"] == f"{NETWORK}: RuntimeError: chart request failed"


@pytest.mark.parametrize(
    "logged_reason",
    [
        "possibly delisted; no price data found  (1d 2024-01-02 -> 2024-01-04)",  # DNS blocked, timezones cached
        "possibly delisted; no timezone found",
        "YFTzMissingError('possibly delisted; no timezone found')",
    ],
    ids=["no-price-data", "no-timezone", "no-timezone-raised"],
)
def test_every_ticker_of_a_batch_failing_with_one_possibly_delisted_reason_is_a_network_failure(caplog, logged_reason):
    def download(**kwargs):  # what yfinance logs for each ticker when Yahoo cannot be reached
        logger = logging.getLogger("yfinance")
        logger.error("\n2 Failed downloads:")
        logger.error(f"['SPY', 'QQQ']: {logged_reason}")
        return download_frame({"SPY": None, "QQQ": None})

    with caplog.at_level(logging.DEBUG):
        result = YahooSource(download).fetch(["SPY", "QQQ"], date(2024, 1, 2), date(2024, 1, 3))

    reason = f"{NETWORK}: {' '.join(logged_reason.split())}"
    assert result.failures == {"SPY": reason, "QQQ": reason}
    assert [r for r in caplog.records if r.name.startswith("yfinance")] == [], "yfinance's log stays out of ours"


def test_a_failed_request_yfinance_logs_for_a_ticker_is_a_network_failure_with_its_error():
    logged = [
        "Failed to get ticker 'SPY' reason: Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com",
        "['SPY']: possibly delisted; no timezone found",
    ]
    result, _ = fetch(download_frame({"SPY": None}), ["SPY"], logged=logged)
    assert result.failures == {
        "SPY": f"{NETWORK}: Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com"
    }


def test_one_ticker_without_rows_among_others_is_no_rows_even_with_the_no_timezone_reason():
    result, _ = fetch(
        download_frame({"SPY": history({"2024-01-02": 470.0}), "XXXX": None}),
        ["SPY", "XXXX"],
        logged=["['XXXX']: possibly delisted; no timezone found"],
    )
    assert result.failures == {"XXXX": f"{NO_ROWS}: possibly delisted; no timezone found"}


def test_a_lone_ticker_with_the_no_timezone_reason_is_no_data_not_a_network_failure():
    # One unknown symbol, or a retry of one, logs exactly what a DNS failure logs for each ticker.
    result, _ = fetch(
        download_frame({"XXXX": None}),
        ["XXXX"],
        logged=["['XXXX']: possibly delisted; no timezone found"],
    )
    assert result.failures == {"XXXX": f"{NO_DATA}: possibly delisted; no timezone found"}


def test_a_network_error_yfinance_logs_as_a_tickers_reason_is_a_network_failure():
    logged = ["['SPY']: DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com')"]
    result, _ = fetch(download_frame({"SPY": None}), ["SPY"], logged=logged)
    assert result.failures == {
        "SPY": f"{NETWORK}: DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com')"
    }


def test_tickers_failing_with_different_reasons_are_not_a_network_failure():
    logged = ["['SPY']: possibly delisted; no timezone found", "['QQQ']: something else"]
    result, _ = fetch(download_frame({"SPY": None, "QQQ": None}), ["SPY", "QQQ"], logged=logged)
    assert result.failures == {
        "SPY": f"{NO_DATA}: possibly delisted; no timezone found",
        "QQQ": f"{NO_DATA}: something else",
    }


# --- failures, never a crash: no data and the rest -------------------------------------------


def test_any_other_exception_fails_every_ticker_as_download_failed_on_one_line():
    result, _ = fetch(ValueError("bad\n  thing"), ["SPY"])
    assert result.failures == {"SPY": "download failed: ValueError: bad thing"}


def test_an_empty_frame_fails_every_ticker_as_no_data():
    result, _ = fetch(download_frame({"SPY": None, "QQQ": None}), ["SPY", "QQQ"])
    assert result.prices.is_empty()
    assert result.prices.schema == pl.Schema(SOURCE_SCHEMA)
    assert result.failures == {"SPY": NO_DATA, "QQQ": NO_DATA}


def test_no_frame_at_all_fails_every_ticker_as_no_data():
    result, _ = fetch(None, ["SPY"])
    assert result.failures == {"SPY": NO_DATA}


def test_an_all_nan_ticker_fails_and_the_others_are_kept():
    frame = download_frame({"SPY": history({"2024-01-02": 470.0}), "XXXX": None})
    assert ("Adj Close", "XXXX") in frame.columns  # yfinance's placeholder, even with auto_adjust
    result, _ = fetch(frame, ["SPY", "XXXX"])
    assert result.failures == {"XXXX": NO_ROWS}
    assert result.prices.select("ticker", "close", "adj_close").rows() == [("SPY", 470.0, 470.0)]


def test_a_ticker_missing_from_the_columns_fails():
    result, _ = fetch(download_frame({"SPY": history({"2024-01-02": 470.0})}), ["SPY", "QQQ"])
    assert result.failures == {"QQQ": NOT_RETURNED}
    assert result.prices["ticker"].to_list() == ["SPY"]


def test_a_long_logged_reason_is_cut_to_300_characters():
    frame = download_frame({"SPY": history({"2024-01-02": 1.0}), "XXXX": None})
    result, _ = fetch(frame, ["SPY", "XXXX"], logged=["['XXXX']: " + "why " * 200])
    assert result.failures["XXXX"].startswith(f"{NO_ROWS}: why why")
    assert len(result.failures["XXXX"]) == 300


def test_a_partly_nan_ticker_keeps_its_good_rows():
    good = history({"2024-01-02": 470.0, "2024-01-03": 468.0, "2024-01-04": 467.0})
    good.loc[good.index[1], "Close"] = np.nan
    result, _ = fetch(download_frame({"SPY": good}), ["SPY"])
    assert result.failures == {}
    assert result.prices["session_date"].to_list() == [date(2024, 1, 2), date(2024, 1, 4)]


def test_a_day_returned_twice_keeps_the_later_row():
    live_and_final = pd.concat([history({"2024-01-02": 1.0}), history({"2024-01-02 15:30": 2.0})])
    result, _ = fetch(download_frame({"SPY": live_and_final}), ["SPY"])
    assert result.prices.select("session_date", "close").rows() == [(date(2024, 1, 2), 2.0)]


def test_a_frame_without_a_close_field_fails_every_ticker():
    frame = download_frame({"SPY": history({"2024-01-02": 1.0})}).drop(columns="Close", level="Price")
    result, _ = fetch(frame, ["SPY"])
    assert result.failures["SPY"].startswith("unexpected download result")


def test_a_frame_without_price_and_ticker_levels_fails_every_ticker():
    flat = pd.DataFrame({"Close": [1.0]}, index=pd.DatetimeIndex(["2024-01-02"], name="Date"))
    result, _ = fetch(flat, ["SPY"])
    assert result.failures["SPY"].startswith("unexpected download result")


# --- failure_kind: the kinds apart, without parsing free text -----------------------------------


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (f"{RATE_LIMITED}: YFRateLimitError: Too Many Requests. Rate limited. Try after a while.", "rate_limited"),
        (RATE_LIMITED, "rate_limited"),
        (f"{NETWORK}: ConnectionError: Failed to resolve 'query2.finance.yahoo.com'", "network"),
        (f"{NETWORK}: possibly delisted; no timezone found", "network"),
        (NO_DATA, "no_data"),
        (f"{NO_DATA}: possibly delisted; no price data found", "no_data"),
        (NO_ROWS, "no_data"),
        (f"{NO_ROWS}: possibly delisted; no timezone found", "no_data"),
        (NOT_RETURNED, "no_data"),
        ("download failed: ValueError: bad thing", "other"),
        ("unexpected download result (list without (Price, Ticker) Close columns)", "other"),
    ],
)
def test_failure_kind_tells_each_reason_apart(reason, kind):
    assert failure_kind(reason) == kind


# --- construction ---------------------------------------------------------------------------


def test_defaults_to_yfinance_download(monkeypatch):
    fake = FakeDownload(download_frame({"SPY": history({"2024-01-02": 1.0})}))
    monkeypatch.setattr(yfinance, "download", fake)
    result = YahooSource().fetch(["SPY"], date(2024, 1, 2), date(2024, 1, 2))
    assert len(fake.calls) == 1 and result.prices.height == 1
