"""One definition per score: the prediction_accuracy view (SQL, in the migrations) and the report's
metrics (polars, forecaster.report.metrics) score every forecast alike, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from forecaster.model.intervals import PredictionInterval
from forecaster.price_frame import conform
from forecaster.report.metrics import ROW_SCORES
from forecaster.store.accuracy import load_predictions
from forecaster.store.predictions import ForecastRow, save_forecasts
from forecaster.store.prices import upsert_prices
from forecaster.store.runs import start_run

NOW = datetime(2024, 3, 20, 23, 0, tzinfo=UTC)
FIRST = date(2024, 3, 4)

#: (last close, forecast, actual close, 80 % and 95 % half-widths or None): inside both bands, below the
#: 80 % band, above both, exactly on a bound, a forecast that does not move, one without an interval.
CASES = [
    (100.0, 101.0, 100.5, (1.0, 2.0)),
    (100.0, 101.0, 99.5, (1.0, 2.0)),
    (50.0, 49.0, 53.0, (0.5, 1.5)),
    (20.0, 20.5, 21.0, (0.5, 1.0)),
    (10.0, 10.0, 9.0, (0.2, 0.4)),
    (30.0, 29.0, 31.0, None),
]


def _day(n: int) -> date:
    return FIRST + timedelta(days=n)


def test_the_view_and_the_report_compute_the_same_per_forecast_scores(migrated_engine):
    closes = [(f"T{k}", _day(0), last) for k, (last, *_) in enumerate(CASES)]
    closes += [(f"T{k}", _day(1), actual) for k, (_, _, actual, _) in enumerate(CASES)]
    frame = conform(pl.DataFrame(closes, schema=["ticker", "session_date", "close"], orient="row"))
    with migrated_engine.begin() as connection:
        run = start_run("daily", connection=connection, as_of=_day(0), preset="default", host=None, started_at=NOW)
        upsert_prices(frame, connection=connection, source="test", fetched_at=NOW)
        save_forecasts(
            [
                ForecastRow(
                    f"T{k}",
                    "default",
                    _day(0),
                    _day(1),
                    predicted,
                    last,
                    None
                    if half is None
                    else PredictionInterval(
                        predicted - half[0], predicted + half[0], predicted - half[1], predicted + half[1], "test"
                    ),
                    run,
                    NOW,
                )
                for k, (last, predicted, _, half) in enumerate(CASES)
            ],
            connection=connection,
        )
    with migrated_engine.connect() as connection:
        view = load_predictions(connection=connection).sort("ticker")

    assert view.height == len(CASES) and view["actual_close"].is_not_null().all()
    ours = view.select(*(expression.alias(name) for name, expression in ROW_SCORES.items()))
    for name in ROW_SCORES:
        stored, computed = view[name].to_list(), ours[name].to_list()
        assert [None if v is None else pytest.approx(v, rel=1e-12, abs=1e-12) for v in computed] == stored, name
