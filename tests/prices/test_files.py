"""read_price_file: three layouts in, one price frame out; every bad file is one UserError line naming it.

The price frame includes the corporate actions (dividends, stock_splits) wherever a layout has
them; the shared yfinance files (skipped without shared/) show them on real rows.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from forecaster.errors import UserError
from forecaster.price_frame import SOURCE_SCHEMA
from forecaster.prices.files import read_price_file
from tests.support import paths
from tests.support.yfinance_frames import download_frame, history

FIXTURES = paths.FIXTURES / "prices"
shared_file = paths.shared_file


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_price_frame(frame: pl.DataFrame) -> None:
    assert frame.schema == pl.Schema(SOURCE_SCHEMA)
    assert frame.equals(frame.sort("ticker", "session_date"))


# --- layouts -----------------------------------------------------------------------------


def test_yfinance_layout_is_one_ticker_named_after_the_file_stem(tmp_path):
    path = write(
        tmp_path,
        "Date,Close,High,Low,Open,Volume\n2024-01-03,468.79,471.19,468.17,470.43,103585900\n"
        "2024-01-02,472.65,473.67,470.49,472.16,123623700\n",
        name="spy.csv",
    )
    frame = read_price_file(path)
    assert_price_frame(frame)
    assert frame.row(0, named=True) == {
        "ticker": "SPY",
        "session_date": date(2024, 1, 2),
        "open": 472.16,
        "high": 473.67,
        "low": 470.49,
        "close": 472.65,
        "adj_close": None,
        "volume": 123623700.0,
        "dividends": None,
        "stock_splits": None,
    }


def test_ticker_argument_names_the_series_of_a_one_ticker_file(tmp_path):
    path = write(tmp_path, "Date,Close\n2024-01-02,1.5\n")
    assert read_price_file(path, ticker="QQQ")["ticker"].to_list() == ["QQQ"]


def test_yfinance_layout_with_adj_close_keeps_it(tmp_path):
    path = write(tmp_path, "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,11,9,10.5,10.2,100\n")
    assert read_price_file(path)["adj_close"].to_list() == [10.2]


def test_long_layout_with_any_column_case_and_order():
    frame = read_price_file(FIXTURES / "long_mixed_case.csv")
    assert_price_frame(frame)
    assert frame.select("ticker", "session_date", "close", "adj_close").rows() == [
        ("AAPL", date(2024, 1, 2), 185.64, 184.94),
        ("AAPL", date(2024, 1, 3), 184.25, 183.55),
        ("MSFT", date(2024, 1, 2), 370.87, 369.17),
        ("MSFT", date(2024, 1, 3), 370.60, 368.90),
    ]


def test_long_layout_with_only_date_ticker_close_leaves_the_other_columns_null(tmp_path):
    frame = read_price_file(write(tmp_path, "date,ticker,close\n2024-01-02,A,1.0\n2024-01-02,B,2.0\n"))
    assert_price_frame(frame)
    assert frame.select("open", "high", "low", "adj_close", "volume").null_count().row(0) == (2, 2, 2, 2, 2)


def test_ticker_argument_selects_one_ticker_of_a_long_file():
    frame = read_price_file(FIXTURES / "long_mixed_case.csv", ticker="MSFT")
    assert frame["ticker"].unique().to_list() == ["MSFT"]
    assert frame.height == 2


def test_multiindex_header_written_by_yf_download_to_csv():
    frame = read_price_file(FIXTURES / "spy_multiindex.csv")
    assert_price_frame(frame)
    assert frame["ticker"].unique().to_list() == ["SPY"]
    assert frame["session_date"].to_list() == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    assert frame.row(0, named=True)["volume"] == 123623700.0


def test_multiindex_header_with_several_tickers_drops_their_empty_cells():
    frame = read_price_file(FIXTURES / "two_tickers_multiindex.csv")
    assert_price_frame(frame)
    assert frame.group_by("ticker").len().sort("ticker").rows() == [("QQQ", 2), ("SPY", 3)]
    assert frame.filter(pl.col("ticker") == "QQQ")["adj_close"].to_list() == [400.1, 398.5]


def test_multiindex_header_grouped_by_ticker_and_without_the_date_line(tmp_path):
    path = write(tmp_path, "Ticker,SPY,SPY\nPrice,Open,Close\n2024-01-02,472.16,472.65\n")
    frame = read_price_file(path)
    assert frame.select("ticker", "session_date", "open", "close").rows() == [("SPY", date(2024, 1, 2), 472.16, 472.65)]


def test_ticker_argument_selects_one_ticker_of_a_multiindex_file():
    frame = read_price_file(FIXTURES / "two_tickers_multiindex.csv", ticker="QQQ")
    assert frame["ticker"].unique().to_list() == ["QQQ"]


@pytest.mark.parametrize(
    "written", ["2024-01-02", "2024-01-02 00:00:00", "2024-01-02 00:00:00-05:00", "2024-01-02T23:00:00+09:00"]
)
def test_dates_with_time_or_offset_keep_the_calendar_date_as_written(tmp_path, written):
    frame = read_price_file(write(tmp_path, f"Date,Close\n{written},1.0\n"))
    assert frame["session_date"].to_list() == [date(2024, 1, 2)]


def test_a_byte_order_mark_and_spaces_around_values_are_tolerated(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("\ufeffDate , Close\n 2024-01-02 , 1.5 \n", encoding="utf-8")
    assert read_price_file(path).select("session_date", "close").rows() == [(date(2024, 1, 2), 1.5)]


def test_unknown_columns_are_ignored(tmp_path):
    path = write(tmp_path, "Date,Close,Capital Gains,Note\n2024-01-02,1.5,0.0,hello\n")
    frame = read_price_file(path)
    assert frame.columns == list(SOURCE_SCHEMA)
    assert frame["close"].to_list() == [1.5]


# --- corporate actions: dividends and stock splits -------------------------------------------


def test_yfinance_layout_reads_dividends_and_stock_splits(tmp_path):
    path = write(
        tmp_path,
        "Date,Close,Dividends,Stock Splits\n2024-01-02,60.0,0.0,0.0\n2024-01-03,61.0,0.485,0.0\n"
        "2024-01-04,30.5,0.0,2.0\n",
        name="ko.csv",
    )
    frame = read_price_file(path)
    assert_price_frame(frame)
    assert frame.select("session_date", "dividends", "stock_splits").rows() == [
        (date(2024, 1, 2), 0.0, 0.0),
        (date(2024, 1, 3), 0.485, 0.0),
        (date(2024, 1, 4), 0.0, 2.0),
    ]


@pytest.mark.parametrize(
    ("dividends", "splits"),
    [("dividends", "stock_splits"), ("Dividends", "Stock Splits"), ("DIVIDENDS", "stocksplits")],
)
def test_long_layout_reads_actions_whatever_the_case_spaces_or_underscores(tmp_path, dividends, splits):
    path = write(
        tmp_path, f"date,ticker,close,{dividends},{splits}\n2024-01-02,KO,60,0.485,0\n2024-01-02,REV,3,0,0.1\n"
    )
    assert read_price_file(path).select("ticker", "dividends", "stock_splits").rows() == [
        ("KO", 0.485, 0.0),
        ("REV", 0.0, 0.1),
    ]


def test_an_empty_action_cell_is_null_and_a_file_without_actions_has_null_actions(tmp_path):
    with_empty = read_price_file(write(tmp_path, "date,ticker,close,dividends\n2024-01-02,KO,60,\n", name="a.csv"))
    assert with_empty.select("dividends", "stock_splits").row(0) == (None, None)
    without = read_price_file(write(tmp_path, "date,ticker,close\n2024-01-02,KO,60\n", name="b.csv"))
    assert without.select("dividends", "stock_splits").row(0) == (None, None)


def test_reads_the_csv_of_yf_download_with_actions(tmp_path):
    # What `yf.download(["KO", "NVDA"], actions=True).to_csv(path)` writes (the frame: tests/support/yfinance_frames.py).
    frame = download_frame(
        {
            "KO": history({"2024-01-02": 60.0, "2024-01-03": 61.0}, dividends={"2024-01-03": 0.485}),
            "NVDA": history({"2024-01-03": 47.5, "2024-01-04": 48.0}, splits={"2024-01-04": 10.0}),
        }
    )
    frame.to_csv(tmp_path / "download.csv")
    prices = read_price_file(tmp_path / "download.csv")
    assert_price_frame(prices)
    assert prices.select("ticker", "session_date", "close", "dividends", "stock_splits").rows() == [
        ("KO", date(2024, 1, 2), 60.0, 0.0, 0.0),
        ("KO", date(2024, 1, 3), 61.0, 0.485, 0.0),
        ("NVDA", date(2024, 1, 3), 47.5, 0.0, 0.0),
        ("NVDA", date(2024, 1, 4), 48.0, 0.0, 10.0),
    ]


def test_reads_the_csv_of_ticker_history_with_its_offset_dates(tmp_path):
    # What `yf.Ticker("KO").history(...).to_csv(path)` writes: "2024-01-03 00:00:00-05:00", actions last.
    history({"2024-01-02": 60.0, "2024-01-03": 61.0}, dividends={"2024-01-03": 0.485}).to_csv(tmp_path / "ko.csv")
    prices = read_price_file(tmp_path / "ko.csv")
    assert prices.select("ticker", "session_date", "dividends").rows() == [
        ("KO", date(2024, 1, 2), 0.0),
        ("KO", date(2024, 1, 3), 0.485),
    ]


# --- the shared data files ---------------------------------------------------------------


def test_reads_the_seed_parity_prices():
    frame = read_price_file(shared_file("reference/seed_parity/prices.csv"))
    assert_price_frame(frame)
    assert frame.height == 250
    assert frame["session_date"][0] == date(2023, 1, 3)
    assert frame["close"][0] == pytest.approx(43.242915)
    # The notebook's data are not all trading days (2023-01-07 is a Saturday): they are read as written.
    assert date(2023, 1, 7) in frame["session_date"].to_list()


def test_reads_the_spy_file_in_yfinance_layout():
    frame = read_price_file(shared_file("data/spy_daily_1993_2026.csv"), ticker="SPY")
    assert_price_frame(frame)
    assert frame.height == 8347
    assert frame["session_date"][0] == date(1993, 1, 29)
    assert frame.select(pl.col("open", "high", "low", "volume").null_count()).row(0) == (0, 0, 0, 0)


def test_reads_the_etf_file_in_long_layout():
    frame = read_price_file(shared_file("data/etf_daily_long.csv"))
    assert_price_frame(frame)
    assert sorted(frame["ticker"].unique()) == ["EFA", "IWM", "QQQ", "SPY", "TLT"]
    assert frame.height == 33785


def test_reads_the_619040_rows_of_the_sp500_file():  # its speed: benchmarks/io_speed.py
    frame = read_price_file(shared_file("data/sp500_stocks_2013_2018_long.csv"))
    assert frame.height == 619040
    assert frame["ticker"].n_unique() == 505
    assert frame["open"].null_count() == 11  # the README's "11 rows lack open/high/low"


def test_reads_bp_l_from_the_yfinance_history_file_with_its_dividends():
    frame = read_price_file(shared_file("data/global_yfinance/BP.L.csv"))
    assert_price_frame(frame)
    assert frame["ticker"].unique().to_list() == ["BP.L"]  # the stem of BP.L.csv
    assert frame.height == 588
    assert date(2025, 2, 27) not in frame["session_date"].to_list()  # the README's missing session
    paid = frame.filter(pl.col("dividends") != 0).select("session_date", "dividends").rows()
    assert paid == [
        (date(2023, 2, 16), 5.5507),
        (date(2023, 5, 11), 5.3089),
        (date(2023, 8, 10), 5.732),
        (date(2023, 11, 9), 5.7367),
        (date(2024, 2, 15), 5.6922),
        (date(2024, 5, 16), 5.6825),
    ]
    assert frame.select(pl.col("dividends", "stock_splits").null_count()).row(0) == (0, 0)
    assert (frame["stock_splits"] == 0).all()


def test_reads_ads_de_from_the_yfinance_history_file_keeping_its_zero_volume_rows():
    frame = read_price_file(shared_file("data/global_yfinance/ADS.DE.csv"))
    assert_price_frame(frame)
    assert frame.height == 593
    zero_volume = frame.filter(pl.col("volume") == 0)
    assert zero_volume.height == 18  # carried-over rows, as Yahoo wrote them: kept, not dropped
    assert zero_volume.row(0, named=True) == {
        "ticker": "ADS.DE", "session_date": date(2023, 1, 27), "open": 145.27999877929688,
        "high": 145.27999877929688, "low": 145.27999877929688, "close": 145.27999877929688,
        "adj_close": 144.2318115234375, "volume": 0.0, "dividends": 0.0, "stock_splits": 0.0,
    }  # fmt: skip
    assert frame.filter(pl.col("dividends") != 0).select("session_date", "dividends").rows() == [
        (date(2023, 5, 12), 0.7),
        (date(2024, 5, 17), 0.7),
    ]


# --- bad input: one line naming the file (and line / column) ------------------------------


def error_for(path: Path, **kwargs) -> str:
    with pytest.raises(UserError) as caught:
        read_price_file(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def test_missing_file(tmp_path):
    assert error_for(tmp_path / "nope.csv").endswith("no such file")


def test_a_directory_is_not_a_price_file(tmp_path):
    assert "is a directory" in error_for(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n", " , \n"])
def test_empty_file(tmp_path, text):
    assert error_for(write(tmp_path, text)).endswith("empty file")


def test_header_without_rows(tmp_path):
    assert error_for(write(tmp_path, "Date,Close\n")).endswith("no data rows")


def test_no_date_column_lists_the_columns_found(tmp_path):
    message = error_for(write(tmp_path, "Day,Close\n2024-01-02,1\n"))
    assert message.endswith("no date column (found columns: Day, Close)")


def test_no_close_column_lists_the_columns_found(tmp_path):
    message = error_for(write(tmp_path, "Date,Open,Adj Close\n2024-01-02,1,1\n"))
    assert message.endswith("no close column (found columns: Date, Open, Adj Close)")


def test_no_close_field_in_a_multiindex_header(tmp_path):
    message = error_for(write(tmp_path, "Price,Open\nTicker,SPY\nDate,\n2024-01-02,1\n"))
    assert "no close column for SPY (found fields: Open)" in message


def test_two_columns_with_the_same_meaning(tmp_path):
    message = error_for(write(tmp_path, "Date,date,Close\n2024-01-02,2024-01-02,1\n"))
    assert "columns 'Date' and 'date' both hold session_date" in message


@pytest.mark.parametrize("written", ["01/02/2024", "2024-13-01", "2024-02-30", "yesterday", "2024-01-02x"])
def test_unparseable_date_names_the_line_and_the_value(tmp_path, written):
    message = error_for(write(tmp_path, f"Date,Close\n2024-01-01,1\n{written},2\n"))
    assert message.endswith(f"line 3: unparseable date {written!r} (expected YYYY-MM-DD)")


def test_missing_date(tmp_path):
    assert error_for(write(tmp_path, "Date,Close\n,2\n")).endswith("line 2: missing date")


def test_non_numeric_close(tmp_path):
    message = error_for(write(tmp_path, "Date,Close\n2024-01-02,1\n2024-01-03,n/a\n"))
    assert message.endswith("line 3: non-numeric close 'n/a'")


def test_missing_close(tmp_path):
    assert error_for(write(tmp_path, "date,ticker,close\n2024-01-02,A,\n")).endswith("line 2: missing close")


@pytest.mark.parametrize("written", ["0", "-1.5", "nan", "inf"])
def test_non_positive_or_non_finite_close(tmp_path, written):
    message = error_for(write(tmp_path, f"Date,Close\n2024-01-02,{written}\n"))
    assert message.endswith(f"line 2: close must be positive and finite, got {written!r}")


def test_non_numeric_optional_column_names_the_column(tmp_path):
    message = error_for(write(tmp_path, "Date,Close,Volume\n2024-01-02,1,lots\n"))
    assert message.endswith("line 2: non-numeric volume 'lots'")


@pytest.mark.parametrize(
    ("header", "value", "column"),
    [
        ("Dividends", "0.48 USD", "dividends"),
        ("Stock Splits", "2:1", "stock_splits"),
        ("stock_splits", "n/a", "stock_splits"),
    ],
)
def test_a_non_numeric_action_names_the_line_and_the_column(tmp_path, header, value, column):
    message = error_for(write(tmp_path, f"Date,Close,{header}\n2024-01-02,1,0\n2024-01-03,1,{value}\n"))
    assert message.endswith(f"line 3: non-numeric {column} {value!r}")


def test_a_non_numeric_action_in_a_multiindex_file_counts_the_header_lines(tmp_path):
    path = write(tmp_path, "Price,Close,Dividends\nTicker,KO,KO\nDate,,\n2024-01-02,60,0\n2024-01-03,61,x\n")
    assert error_for(path).endswith("line 5: non-numeric dividends 'x'")


def test_line_numbers_count_the_three_multiindex_header_lines(tmp_path):
    path = write(tmp_path, "Price,Close\nTicker,SPY\nDate,\n2024-01-02,1\n2024-01-03,abc\n")
    assert error_for(path).endswith("line 5: non-numeric close 'abc'")


def test_missing_ticker_in_a_long_file(tmp_path):
    assert error_for(write(tmp_path, "date,ticker,close\n2024-01-02, ,1\n")).endswith("line 2: missing ticker")


def test_duplicated_ticker_and_date_names_both_lines(tmp_path):
    path = write(tmp_path, "date,ticker,close\n2024-01-02,A,1\n2024-01-02,B,1\n2024-01-02 00:00:00,A,2\n")
    assert error_for(path).endswith("A 2024-01-02 appears more than once (lines 2, 4)")


def test_absent_ticker_in_a_long_file_lists_some_that_are_there(tmp_path):
    rows = "".join(f"2024-01-02,T{i},1\n" for i in range(7))
    message = error_for(write(tmp_path, "date,ticker,close\n" + rows), ticker="ZZZ")
    assert message.endswith("ticker 'ZZZ' not in the file (it has T0, T1, T2, T3, T4, ... (7 tickers))")


def test_ragged_rows_are_not_a_readable_csv(tmp_path):
    message = error_for(write(tmp_path, "Date,Close\n2024-01-02,1,2,3\n"))
    assert "not a readable CSV" in message
