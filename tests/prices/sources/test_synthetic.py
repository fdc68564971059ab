"""SyntheticSource: seeded GBM, each ticker on its own market's sessions, a pure function of (seed, ticker, session)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from forecaster.calendar import NYSE, trading_calendar
from forecaster.errors import UserError
from forecaster.price_frame import SOURCE_SCHEMA
from forecaster.prices.sources.synthetic import SyntheticSource

NYSE_CALENDAR = trading_calendar(NYSE)

JAN = (date(2024, 1, 1), date(2024, 1, 31))


def test_prices_come_in_the_price_schema_and_never_fail():
    result = SyntheticSource().fetch(["AAA", "BBB"], *JAN)
    assert result.failures == {}
    assert result.prices.schema == pl.Schema(SOURCE_SCHEMA)
    assert result.prices.equals(result.prices.sort("ticker", "session_date"))


def test_rows_are_exactly_the_sessions_in_the_range():
    prices = SyntheticSource().fetch(["AAA"], date(2024, 3, 25), date(2024, 4, 5)).prices
    assert prices["session_date"].to_list() == NYSE_CALENDAR.sessions_between(date(2024, 3, 25), date(2024, 4, 5))
    assert date(2024, 3, 29) not in prices["session_date"].to_list()  # Good Friday


def test_the_same_seed_gives_the_same_prices():
    first, again = (SyntheticSource(seed=7).fetch(["AAA"], *JAN).prices for _ in range(2))
    assert first.equals(again)


def test_another_seed_or_ticker_gives_other_prices():
    base = SyntheticSource(seed=7).fetch(["AAA", "BBB"], *JAN).prices
    other_seed = SyntheticSource(seed=8).fetch(["AAA"], *JAN).prices
    aaa, bbb = (base.filter(pl.col("ticker") == t)["close"] for t in ("AAA", "BBB"))
    assert not np.allclose(aaa, other_seed["close"])
    assert not np.allclose(aaa, bbb)


def test_a_tickers_prices_do_not_depend_on_the_other_tickers_asked():
    alone = SyntheticSource().fetch(["AAA"], *JAN).prices
    among_many = SyntheticSource().fetch([f"T{i}" for i in range(50)] + ["AAA", "ZZZ"], *JAN).prices
    assert among_many.filter(pl.col("ticker") == "AAA").equals(alone)


def test_a_sessions_prices_do_not_depend_on_the_range_asked():
    source = SyntheticSource(seed=3)
    long_run = source.fetch(["AAA", "BBB"], date(2022, 6, 1), date(2025, 3, 31)).prices
    ranges = [
        (date(2024, 1, 2), date(2024, 1, 2)),
        (date(2023, 12, 20), date(2024, 1, 10)),  # across a year end
        (date(2022, 6, 1), date(2022, 6, 30)),
    ]
    for start, end in ranges:
        part = source.fetch(["BBB", "AAA"], start, end).prices
        assert part.height > 0
        assert part.equals(long_run.filter(pl.col("session_date").is_between(start, end)))


def test_the_values_are_pinned_across_processes_and_versions():
    # They end up in the prices table: a change here changes every synthetic database.
    row = SyntheticSource(seed=1).fetch(["SPY"], date(2024, 3, 4), date(2024, 3, 4)).prices.row(0, named=True)
    assert (row["open"], row["high"], row["low"], row["close"]) == pytest.approx(
        (106.74946910516961, 107.71858877996729, 106.35215545490315, 107.4776229115457), rel=1e-12
    )
    assert row["volume"] == 720167.0


def test_prices_are_positive_and_high_low_bracket_open_and_close():
    prices = SyntheticSource().fetch([f"T{i}" for i in range(200)], date(2020, 1, 1), date(2024, 12, 31)).prices
    assert prices.select(pl.min_horizontal("open", "high", "low", "close", "volume").min()).item() > 0
    assert prices.filter(pl.col("high") < pl.max_horizontal("open", "close")).is_empty()
    assert prices.filter(pl.col("low") > pl.min_horizontal("open", "close")).is_empty()
    assert prices["adj_close"].equals(prices["close"], check_names=False)


def test_daily_log_returns_have_the_asked_volatility_and_drift():
    source = SyntheticSource(drift=0.0005, volatility=0.02)
    prices = source.fetch([f"T{i}" for i in range(300)], date(2015, 1, 1), date(2024, 12, 31)).prices
    returns = prices.select(pl.col("close").log().diff().over("ticker").alias("r")).drop_nulls()["r"]
    assert returns.std() == pytest.approx(0.02, rel=0.02)
    assert returns.mean() == pytest.approx(0.0005 - 0.02**2 / 2, abs=0.0002)


def test_start_price_is_the_close_before_the_first_session_of_2020():
    source = SyntheticSource(start_price=50.0, volatility=0.0, drift=0.001)
    prices = source.fetch(["AAA"], date(2020, 1, 2), date(2020, 1, 3)).prices
    assert prices["close"].to_list() == pytest.approx([50.0 * np.exp(0.001), 50.0 * np.exp(0.002)])


def test_dates_outside_the_calendar_are_a_user_error():
    with pytest.raises(UserError, match="outside the NYSE calendar"):
        SyntheticSource().fetch(["AAA"], date(1980, 1, 1), date(1990, 1, 31))


def test_nothing_asked_gives_nothing():
    assert SyntheticSource().fetch([], *JAN).prices.is_empty()
    assert SyntheticSource().fetch(["AAA"], date(2024, 7, 4), date(2024, 7, 4)).prices.is_empty()


def test_5000_tickers_by_300_sessions_come_in_one_call():  # its speed: benchmarks/io_speed.py
    prices = SyntheticSource().fetch([f"T{i:04d}" for i in range(5000)], date(2024, 1, 2), date(2025, 3, 13)).prices
    assert prices.height == 5000 * 300
    assert prices["ticker"].n_unique() == 5000


def days_of(prices: pl.DataFrame, ticker: str) -> list[date]:
    return prices.filter(pl.col("ticker") == ticker)["session_date"].to_list()


def test_each_ticker_trades_on_its_own_markets_sessions():
    prices = SyntheticSource().fetch(["SPY", "VOD.L", "7203.T", "BTC-USD"], date(2024, 1, 1), date(2024, 1, 10)).prices

    assert days_of(prices, "BTC-USD") == [date(2024, 1, d) for d in range(1, 11)]  # every day: 24/7
    assert days_of(prices, "7203.T") == [
        date(2024, 1, d) for d in (4, 5, 9, 10)
    ]  # Tokyo: New Year to the 3rd, then Coming of Age Day
    assert days_of(prices, "VOD.L") == [date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10)]  # London
    assert days_of(prices, "SPY") == [date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10)]  # New York
    assert prices.equals(prices.sort("ticker", "session_date"))


def test_a_new_york_tickers_prices_do_not_depend_on_the_other_markets_asked():
    alone = SyntheticSource(seed=2).fetch(["SPY"], *JAN).prices
    among_markets = SyntheticSource(seed=2).fetch(["BTC-USD", "SPY", "7203.T", "EURUSD=X"], *JAN).prices

    assert among_markets.filter(pl.col("ticker") == "SPY").equals(alone)


@pytest.mark.parametrize("ticker", ["BTC-USD", "7203.T", "VOD.L"])
def test_on_any_calendar_a_sessions_prices_do_not_depend_on_the_range_or_the_company_asked(ticker):
    source = SyntheticSource(seed=3)
    long_run = source.fetch(["AAA", "BTC-USD", "7203.T", "VOD.L"], date(2022, 6, 1), date(2025, 3, 31)).prices
    for start, end in [(date(2024, 1, 1), date(2024, 1, 7)), (date(2023, 12, 20), date(2024, 1, 10))]:
        part = source.fetch([ticker], start, end).prices

        assert part.height > 0
        assert part.equals(
            long_run.filter((pl.col("ticker") == ticker) & pl.col("session_date").is_between(start, end))
        )


def test_the_calendar_is_the_one_calendar_of_gives():
    source = SyntheticSource(calendar_of=lambda ticker: "24/7")

    prices = source.fetch(["AAA"], date(2024, 3, 29), date(2024, 4, 1)).prices

    assert prices["session_date"].to_list() == [
        date(2024, 3, 29),
        date(2024, 3, 30),
        date(2024, 3, 31),
        date(2024, 4, 1),
    ]


def test_start_price_is_the_close_before_the_first_session_of_2020_on_every_calendar():
    source = SyntheticSource(start_price=50.0, volatility=0.0, drift=0.001)

    prices = source.fetch(["BTC-USD", "7203.T"], date(2020, 1, 1), date(2020, 1, 7)).prices

    assert days_of(prices, "BTC-USD")[:2] == [date(2020, 1, 1), date(2020, 1, 2)]
    assert days_of(prices, "7203.T") == [date(2020, 1, 6), date(2020, 1, 7)]  # Tokyo reopens on the 6th
    for ticker in ("BTC-USD", "7203.T"):
        closes = prices.filter(pl.col("ticker") == ticker)["close"].to_list()
        assert closes[:2] == pytest.approx([50.0 * np.exp(0.001), 50.0 * np.exp(0.002)])


def test_a_range_outside_a_tickers_calendar_is_a_user_error_naming_the_calendar():
    tokyo_from_1997 = SyntheticSource().fetch(["7203.T"], date(1997, 1, 1), date(1997, 1, 31)).prices
    assert tokyo_from_1997.height > 0

    with pytest.raises(UserError, match="outside the XTKS calendar"):
        SyntheticSource().fetch(["7203.T"], date(1996, 12, 1), date(1997, 1, 31))


def test_an_unknown_suffix_is_a_user_error_naming_the_ticker():
    with pytest.raises(UserError, match="ticker FOO.XY: unknown exchange suffix .XY"):
        SyntheticSource().fetch(["SPY", "FOO.XY"], *JAN)


def test_an_unknown_calendar_name_is_a_user_error_naming_it():
    with pytest.raises(UserError, match="calendar 'XXXX': exchange_calendars has no such calendar"):
        SyntheticSource(calendar_of=lambda ticker: "XXXX").fetch(["AAA"], *JAN)
