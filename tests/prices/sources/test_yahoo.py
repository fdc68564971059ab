"""YahooSource: yfinance's wide (Price, Ticker) frame in, long PRICE_SCHEMA rows and per-ticker failures out.

No test reaches the network: `download` is a fake returning frames assembled the way
yfinance 1.x `download` assembles them (yfinance/multi.py; tests/support/yfinance_frames.py),
and one test checks that assembly against yfinance's own code with only `Ticker.history` replaced.
"""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
import yfinance
import yfinance.multi
from yfinance.exceptions import YFRateLimitError

from forecaster.price_frame import PRICE_SCHEMA
from forecaster.prices.sources.yahoo import NO_DATA, NO_ROWS, NOT_RETURNED, YahooSource
from tests.support.fakes import FakeDownload
from tests.support.yfinance_frames import download_frame, history


def fetch(result, tickers, start=date(2024, 1, 2), end=date(2024, 1, 5), **options):
    fake = FakeDownload(result)
    return YahooSource(fake, **options).fetch(tickers, start, end), fake


# --- the fake is faithful ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")  # yfinance 1.7 on pandas 3.1
def test_fake_frames_match_what_yfinance_download_assembles(monkeypatch):
    histories = {
        "AAA": history({"2024-01-02": 10.0, "2024-01-03": 11.0}),
        "BBB": history({"2024-01-03": 20.0, "2024-01-04": 21.0}),
        "BAD": None,
    }

    class FakeTicker:
        def __init__(self, ticker):
            self.ticker, self._price_history = ticker, None

        def history(self, **kwargs):
            if histories[self.ticker] is None:
                raise RuntimeError(f"${self.ticker}: possibly delisted; no price data found")
            return histories[self.ticker].copy()

    monkeypatch.setattr(yfinance.multi, "Ticker", FakeTicker)
    monkeypatch.setattr(yfinance.multi, "YfData", lambda session=None: None)
    monkeypatch.setattr(yfinance.multi, "new_session", lambda: None)
    real = YahooSource().fetch(["AAA", "BBB", "BAD"], date(2024, 1, 2), date(2024, 1, 4))  # the real download()
    faked = YahooSource(lambda **kwargs: download_frame(histories)).fetch(
        ["AAA", "BBB", "BAD"], date(2024, 1, 2), date(2024, 1, 4)
    )
    assert real.prices.equals(faked.prices)
    assert faked.failures == {"BAD": NO_ROWS}
    # The real download also logs why, which becomes the reason.
    assert real.failures == {"BAD": f"{NO_ROWS}: RuntimeError('possibly delisted; no price data found')"}
    pd.testing.assert_frame_equal(
        yfinance.download(["AAA", "BBB", "BAD"], start="2024-01-02", end="2024-01-05", progress=False),
        download_frame(histories),
    )


# --- the call --------------------------------------------------------------------------------


def test_calls_download_once_with_an_exclusive_end_and_no_progress_bar():
    _, fake = fetch(download_frame({"SPY": history({"2024-01-02": 1.0})}), ["SPY", "QQQ"], timeout=3)
    assert fake.calls == [
        {
            "tickers": ["SPY", "QQQ"],
            "start": "2024-01-02",
            "end": "2024-01-06",
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


# --- normalising -----------------------------------------------------------------------------


def test_one_ticker_becomes_long_rows_with_adj_close_equal_to_close():
    frame = download_frame({"SPY": history({"2024-01-02": 470.0, "2024-01-03": 468.0})})
    result, _ = fetch(frame, ["SPY"])
    assert result.failures == {}
    assert result.prices.schema == pl.Schema(PRICE_SCHEMA)
    assert result.prices.rows(named=True) == [
        {"ticker": "SPY", "session_date": date(2024, 1, 2), "open": 469.5, "high": 471.0, "low": 469.0,
         "close": 470.0, "adj_close": 470.0, "volume": 1000.0},
        {"ticker": "SPY", "session_date": date(2024, 1, 3), "open": 467.5, "high": 469.0, "low": 467.0,
         "close": 468.0, "adj_close": 468.0, "volume": 2000.0},
    ]  # fmt: skip


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


# --- failures, never a crash ------------------------------------------------------------------


def test_rate_limit_fails_every_ticker_with_its_message():
    result, _ = fetch(YFRateLimitError(), ["SPY", "QQQ"])
    assert result.prices.is_empty()
    reason = "download failed: YFRateLimitError: Too Many Requests. Rate limited. Try after a while."
    assert result.failures == {"SPY": reason, "QQQ": reason}


def test_any_exception_fails_every_ticker_with_a_one_line_reason():
    result, _ = fetch(ConnectionError("Failed to resolve\n  'query2.finance.yahoo.com'"), ["SPY"])
    assert result.failures == {"SPY": "download failed: ConnectionError: Failed to resolve 'query2.finance.yahoo.com'"}


def test_the_reason_yfinance_logs_for_a_failed_ticker_is_kept_and_its_log_stays_out_of_ours(caplog):
    def download(**kwargs):  # what yfinance 1.x does when Yahoo cannot be reached (DNS blocked)
        logger = logging.getLogger("yfinance")
        logger.error("\n2 Failed downloads:")
        logger.error("['SPY', 'QQQ']: YFTzMissingError('possibly delisted; no timezone found')")
        return download_frame({"SPY": None, "QQQ": None})

    with caplog.at_level(logging.DEBUG):
        result = YahooSource(download).fetch(["SPY", "QQQ"], date(2024, 1, 2), date(2024, 1, 3))

    reason = f"{NO_DATA}: YFTzMissingError('possibly delisted; no timezone found')"
    assert result.failures == {"SPY": reason, "QQQ": reason}
    assert [r for r in caplog.records if r.name.startswith("yfinance")] == []


def test_an_empty_frame_fails_every_ticker_as_no_data():
    result, _ = fetch(download_frame({"SPY": None, "QQQ": None}), ["SPY", "QQQ"])
    assert result.prices.is_empty()
    assert result.prices.schema == pl.Schema(PRICE_SCHEMA)
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


# --- construction ---------------------------------------------------------------------------


def test_defaults_to_yfinance_download(monkeypatch):
    fake = FakeDownload(download_frame({"SPY": history({"2024-01-02": 1.0})}))
    monkeypatch.setattr(yfinance, "download", fake)
    result = YahooSource().fetch(["SPY"], date(2024, 1, 2), date(2024, 1, 2))
    assert len(fake.calls) == 1 and result.prices.height == 1
