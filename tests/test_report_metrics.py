"""Accuracy metrics on hand-checked realised forecasts (no database)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from forecaster.report.metrics import directional_accuracy, mae, mape, rmse, skill_ratio, window_metrics


def realised(*rows: tuple[float, float, float], ticker: str = "AAA", first: date = date(2024, 1, 2)) -> pl.DataFrame:
    """Rows of (last_close, predicted_close, actual_close), one session apart."""
    return pl.DataFrame(
        {
            "ticker": [ticker] * len(rows),
            "target_session": [first + timedelta(days=i) for i in range(len(rows))],
            "last_close": [float(r[0]) for r in rows],
            "predicted_close": [float(r[1]) for r in rows],
            "actual_close": [float(r[2]) for r in rows],
        },
        schema={
            "ticker": pl.String, "target_session": pl.Date, "last_close": pl.Float64,
            "predicted_close": pl.Float64, "actual_close": pl.Float64,
        },
    )


# last, predicted, actual:  model error  naive error  direction
THREE = realised(
    (100, 101, 102),  #     -1           -2         up/up: hit
    (101, 99, 100),  #      -1           +1         down/down: hit
    (101, 102, 100),  #     +2           +1         up/down: miss
)


def test_errors_of_three_forecasts():
    assert mae(THREE) == pytest.approx(4 / 3)
    assert rmse(THREE) == pytest.approx((6 / 3) ** 0.5)
    assert mape(THREE) == pytest.approx((100 / 102 + 100 / 100 + 200 / 100) / 3)


def test_directional_accuracy_counts_a_miss_when_the_close_moved_against_the_forecast():
    assert directional_accuracy(THREE) == pytest.approx(2 / 3)
    assert directional_accuracy(realised((100, 101, 99))) == 0.0


def test_a_flat_forecast_hits_only_a_flat_close():
    assert directional_accuracy(realised((100, 100, 100))) == 1.0
    assert directional_accuracy(realised((100, 100, 101))) == 0.0


def test_skill_ratio_is_model_mae_over_naive_mae():
    assert skill_ratio(THREE) == 1.0  # 4/3 over 4/3
    # model errors 1 and 2, naive errors 2 and 2: 1.5 / 2
    assert skill_ratio(realised((100, 101, 102), (100, 100, 102))) == 0.75


def test_skill_ratio_is_undefined_when_the_naive_forecast_was_perfect():
    assert skill_ratio(realised((100, 101, 100))) is None


def test_no_realised_forecast_gives_none_not_zero_or_nan():
    nothing = THREE.clear()
    assert [f(nothing) for f in (mae, rmse, mape, directional_accuracy, skill_ratio)] == [None] * 5


def test_window_metrics_use_the_last_n_realised_forecasts_of_each_ticker():
    # AAA: a bad forecast, then two perfect ones; BBB: one forecast worse than naive. Shuffled on purpose.
    aaa = realised((100, 110, 100), (100, 101, 101), (100, 102, 102))
    bbb = realised((100, 103, 101), ticker="BBB")
    rows = pl.concat([bbb, aaa]).reverse()

    metrics = {row["ticker"]: row for row in window_metrics(rows, 2).iter_rows(named=True)}

    assert set(metrics) == {"AAA", "BBB"}
    assert metrics["AAA"]["n_2"] == 2
    assert metrics["AAA"]["mae_2"] == 0.0  # the bad first forecast is outside the window
    assert metrics["AAA"]["skill_ratio_2"] == 0.0
    assert metrics["AAA"]["worse_than_naive_2"] is False
    assert metrics["BBB"]["n_2"] == 1
    assert metrics["BBB"]["skill_ratio_2"] == 2.0
    assert metrics["BBB"]["worse_than_naive_2"] is True
    assert window_metrics(rows, 3).filter(pl.col("ticker") == "AAA")["mae_3"].item() == pytest.approx(10 / 3)


def test_window_metrics_leave_out_a_ticker_with_nothing_realised():
    assert window_metrics(THREE.clear(), 20).is_empty()
