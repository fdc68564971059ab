"""source_from_spec: "yahoo", "csv:PATH", "synthetic" or "synthetic:SEED" names a source; anything else is a
user error naming the accepted forms."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from forecaster.config import Settings
from forecaster.errors import UserError
from forecaster.prices.sources import source_from_spec
from forecaster.prices.sources.csv_file import CsvSource
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.prices.sources.yahoo import YahooSource

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


@pytest.mark.parametrize(("spec", "seed"), [("synthetic", 0), ("synthetic:42", 42), (" Synthetic : 7 ", 7)])
def test_synthetic_spec_builds_a_seeded_source(spec, seed):
    source = source_from_spec(spec)
    assert isinstance(source, SyntheticSource)
    assert (source.seed, source.name) == (seed, f"synthetic:{seed}")


def test_synthetic_spec_puts_each_ticker_on_the_calendar_the_settings_give_it():
    settings = Settings(tickers="AAA,BTC-USD", calendars="AAA=24/7")
    source = source_from_spec("synthetic:3", tickers=settings.tickers, calendar_of=settings.calendar_of)

    weekend = source.fetch(["AAA", "BTC-USD", "SPY"], date(2024, 3, 30), date(2024, 3, 31)).prices

    assert weekend["ticker"].unique(maintain_order=True).to_list() == ["AAA", "BTC-USD"]  # SPY: New York's, no weekend


def test_without_calendar_of_the_synthetic_spec_takes_each_calendar_from_the_symbol():
    weekend = source_from_spec("synthetic").fetch(["AAA", "BTC-USD"], date(2024, 3, 30), date(2024, 3, 31)).prices

    assert weekend["ticker"].unique().to_list() == ["BTC-USD"]


def test_yahoo_spec_builds_a_yahoo_source():
    assert isinstance(source_from_spec("yahoo"), YahooSource)


@pytest.mark.parametrize(
    "spec", ["", "yahooo", "yahoo:x", "synthetic:-1", "synthetic:abc", "synthetic:", "csv", "postgres://x"]
)
def test_an_unknown_spec_is_a_user_error_naming_it_and_the_accepted_forms(spec):
    with pytest.raises(UserError) as caught:
        source_from_spec(spec)
    assert str(caught.value) == f"unknown price source {spec!r}: expected yahoo, csv:PATH, synthetic or synthetic:SEED"


def test_csv_spec_builds_a_csv_source_named_by_its_spec(long_file):
    source = source_from_spec(f"csv:{long_file}")
    assert isinstance(source, CsvSource)
    assert source.name == f"csv:{long_file}"
    assert source.fetch(["BBB"], date(2024, 1, 2), date(2024, 1, 2)).prices.height == 1


def test_csv_spec_without_a_path_is_a_user_error():
    with pytest.raises(UserError, match="unknown price source 'csv:'"):
        source_from_spec("csv:")
