"""Forecasts read back through the prediction_accuracy view, checked by hand on a small example."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecaster.model.intervals import PredictionInterval
from forecaster.price_frame import PRICE_SCHEMA
from forecaster.store.accuracy import ACCURACY_SCHEMA, load_predictions
from forecaster.store.predictions import ForecastRow, latest_as_of, predicted_tickers, save_forecasts
from forecaster.store.prices import upsert_prices
from forecaster.store.runs import start_run

NOW = datetime(2024, 3, 6, 23, 0, tzinfo=UTC)
MON, TUE, WED = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)


def forecast(
    ticker: str,
    as_of: date,
    target: date,
    predicted: float,
    last: float,
    run_id: int,
    preset: str = "seed",
    interval: PredictionInterval | None = None,
) -> ForecastRow:
    return ForecastRow(
        ticker=ticker,
        preset=preset,
        as_of=as_of,
        target_session=target,
        predicted_close=predicted,
        last_close=last,
        interval=interval,
        run_id=run_id,
        created_at=NOW,
    )


def bounds(lower_80: float, upper_80: float, lower_95: float, upper_95: float) -> PredictionInterval:
    return PredictionInterval(lower_80, upper_80, lower_95, upper_95, method="test")


@pytest.fixture
def example(migrated_engine):
    """Closes on Monday and Tuesday; forecasts for Tuesday (realised) and Wednesday (not yet)."""
    closes = pl.DataFrame(
        {
            "ticker": ["SPY", "SPY", "QQQ", "QQQ", "IWM", "IWM"],
            "session_date": [MON, TUE] * 3,
            "close": [100.0, 104.0, 50.0, 49.0, 20.0, 20.0],
        },
        schema_overrides=PRICE_SCHEMA,
    ).with_columns(pl.lit(None, pl.Float64).alias(c) for c in ("open", "high", "low", "adj_close", "volume"))
    with migrated_engine.begin() as connection:
        upsert_prices(closes, connection=connection, source="test", fetched_at=NOW)
        run_id = start_run("daily", connection=connection, as_of=MON, preset="seed", host=None, started_at=NOW)
        save_forecasts(
            [
                # up, and it went up (to 104): outside the 80 % interval by 1, inside the 95 % one
                forecast("SPY", MON, TUE, 102.0, 100.0, run_id, interval=bounds(100.0, 103.0, 99.0, 105.0)),
                # up, but it went down (to 49): below the 95 % interval by 0.5, so below the 80 % one by 1.5
                forecast("QQQ", MON, TUE, 51.0, 50.0, run_id, interval=bounds(50.5, 51.5, 49.5, 52.5)),
                forecast("IWM", MON, TUE, 20.0, 20.0, run_id),  # flat, and it stayed flat
                forecast("SPY", TUE, WED, 105.0, 104.0, run_id),  # Wednesday's close is not known yet
                forecast("SPY", MON, TUE, 99.0, 100.0, run_id, preset="default"),
            ],
            connection=connection,
        )
    return migrated_engine, run_id


def test_the_view_compares_each_forecast_with_the_realised_and_the_naive_close(example):
    engine, run_id = example
    with engine.connect() as connection:
        seed = load_predictions(connection=connection, preset="seed")
    columns = list(ACCURACY_SCHEMA)
    expected = pl.DataFrame(
        [
            # ticker, preset, as_of, target, predicted, last, actual, error, abs, pct, naive, naive abs, hit,
            # lower_80, upper_80, lower_95, upper_95, method, covered 80, 95, Winkler 80 (width + 10 · miss), 95 (+ 40 · miss), run,
            # calendar
            ("IWM", "seed", MON, TUE, 20.0, 20.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1, *[None] * 9, run_id, None),
            (
                "QQQ",
                "seed",
                MON,
                TUE,
                51.0,
                50.0,
                49.0,
                2.0,
                2.0,
                100 * 2 / 49,
                1.0,
                1.0,
                0,
                50.5,
                51.5,
                49.5,
                52.5,
                "test",
                0,
                0,
                1.0 + 10 * 1.5,
                3.0 + 40 * 0.5,
                run_id,
                None,  # no series: the rows were written by hand
            ),
            (
                "SPY",
                "seed",
                MON,
                TUE,
                102.0,
                100.0,
                104.0,
                -2.0,
                2.0,
                100 * 2 / 104,
                -4.0,
                4.0,
                1,
                100.0,
                103.0,
                99.0,
                105.0,
                "test",
                0,
                1,
                3.0 + 10 * 1.0,
                6.0,
                run_id,
                None,  # no series: the rows were written by hand
            ),
            (
                "SPY",
                "seed",
                TUE,
                WED,
                105.0,
                104.0,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                *[None] * 9,
                run_id,
                None,
            ),
        ],
        schema=ACCURACY_SCHEMA,
        orient="row",
    )
    assert_frame_equal(seed.select(columns), expected, check_exact=False, rel_tol=1e-12)


def test_predictions_filter_by_ticker_preset_and_first_target_session(example):
    engine, _ = example
    with engine.connect() as connection:
        spy = load_predictions(connection=connection, ticker="SPY")
        from_wednesday = load_predictions(connection=connection, since=WED)
        none = load_predictions(connection=connection, ticker="DIA")
    assert list(zip(spy["preset"], spy["target_session"], strict=True)) == [
        ("default", TUE),
        ("seed", TUE),
        ("seed", WED),
    ]
    assert from_wednesday["ticker"].to_list() == ["SPY"]
    assert none.is_empty() and none.schema == ACCURACY_SCHEMA


def test_finished_work_is_found_by_preset_and_target_session(example):
    engine, _ = example
    with engine.connect() as connection:
        assert predicted_tickers("seed", TUE, connection=connection) == {"SPY", "QQQ", "IWM"}
        assert predicted_tickers("default", TUE, connection=connection) == {"SPY"}
        assert predicted_tickers("seed", date(2024, 3, 7), connection=connection) == set()
        assert latest_as_of("seed", connection=connection) == TUE
        assert latest_as_of("default", connection=connection) == MON
        assert latest_as_of("other", connection=connection) is None
