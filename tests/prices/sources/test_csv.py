"""CsvSource: the rows of a price file in the asked range, for the asked tickers."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest

import forecaster.prices.sources.csv_file
from forecaster.errors import UserError
from forecaster.price_frame import SOURCE_SCHEMA
from forecaster.prices.sources.csv_file import CsvSource

LONG = (
    "date,ticker,close\n"
    "2024-01-02,AAA,10\n2024-01-03,AAA,11\n2024-01-04,AAA,12\n2024-01-05,AAA,13\n"
    "2024-01-02,BBB,20\n2024-01-03,BBB,21\n"
)


@pytest.fixture
def long_file(tmp_path) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(LONG)
    return path


def test_returns_the_asked_tickers_between_start_and_end_inclusive(long_file):
    result = CsvSource(long_file).fetch(["AAA", "BBB"], date(2024, 1, 3), date(2024, 1, 4))
    assert result.failures == {}
    assert result.prices.schema == pl.Schema(SOURCE_SCHEMA)
    assert result.prices.select("ticker", "session_date", "close").rows() == [
        ("AAA", date(2024, 1, 3), 11.0),
        ("AAA", date(2024, 1, 4), 12.0),
        ("BBB", date(2024, 1, 3), 21.0),
    ]


def test_tickers_not_asked_for_are_left_out(long_file):
    result = CsvSource(long_file).fetch(["BBB"], date(2024, 1, 1), date(2024, 1, 31))
    assert result.prices["ticker"].unique().to_list() == ["BBB"]


def test_a_ticker_absent_from_the_file_fails_naming_the_file(long_file):
    result = CsvSource(long_file).fetch(["AAA", "ZZZ"], date(2024, 1, 2), date(2024, 1, 2))
    assert result.failures == {"ZZZ": f"not in {long_file}"}
    assert result.prices["ticker"].to_list() == ["AAA"]


def test_a_ticker_with_no_rows_in_the_range_is_not_a_failure(long_file):
    result = CsvSource(long_file).fetch(["AAA", "BBB"], date(2024, 1, 5), date(2024, 1, 10))
    assert result.failures == {}
    assert result.prices.select("ticker", "session_date").rows() == [("AAA", date(2024, 1, 5))]


def test_a_one_ticker_yfinance_file_is_named_after_its_stem(tmp_path):
    path = tmp_path / "spy.csv"
    path.write_text("Date,Close,High,Low,Open,Volume\n2024-01-02,472.65,473.67,470.49,472.16,123623700\n")
    result = CsvSource(path).fetch(["SPY"], date(2024, 1, 1), date(2024, 1, 31))
    assert result.failures == {}
    assert result.prices["close"].to_list() == [472.65]


def test_the_file_is_read_on_the_first_fetch_not_before(tmp_path):
    source = CsvSource(tmp_path / "later.csv")  # no file yet: constructing is fine
    (tmp_path / "later.csv").write_text(LONG)
    assert source.fetch(["AAA"], date(2024, 1, 2), date(2024, 1, 2)).prices.height == 1


def test_the_file_is_read_once_while_it_is_unchanged(long_file, monkeypatch):
    source = CsvSource(long_file)
    source.fetch(["AAA"], date(2024, 1, 2), date(2024, 1, 5))
    monkeypatch.setattr(
        forecaster.prices.sources.csv_file, "read_price_file", lambda *a, **k: pytest.fail("read again")
    )
    assert source.fetch(["BBB"], date(2024, 1, 2), date(2024, 1, 5)).prices.height == 2


def test_a_changed_file_is_read_again(long_file):
    source = CsvSource(long_file)
    assert source.fetch(["AAA"], date(2024, 1, 8), date(2024, 1, 8)).prices.is_empty()
    long_file.write_text(LONG + "2024-01-08,AAA,14\n")
    os.utime(long_file, ns=(1, 1))  # a different mtime even on coarse file systems
    assert source.fetch(["AAA"], date(2024, 1, 8), date(2024, 1, 8)).prices["close"].to_list() == [14.0]


def test_a_bad_file_is_a_user_error_naming_it(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,ticker,close\n2024-01-02,AAA,oops\n")
    with pytest.raises(UserError, match=r"bad\.csv: line 2: non-numeric close 'oops'"):
        CsvSource(path).fetch(["AAA"], date(2024, 1, 2), date(2024, 1, 2))


def test_a_missing_file_is_a_user_error_on_fetch(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        CsvSource(tmp_path / "gone.csv").fetch(["AAA"], date(2024, 1, 2), date(2024, 1, 2))
