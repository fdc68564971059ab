"""Accuracy metrics on hand-checked realised forecasts (no database)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from forecaster.report.metrics import (
    coverage,
    directional_accuracy,
    interval_width,
    mae,
    mape,
    pooled_metrics,
    rmse,
    rolling_skill,
    skill_ratio,
    window_metrics,
    winkler_score,
)

BOUNDS = ("lower_80", "upper_80", "lower_95", "upper_95")


def realised(
    *rows: tuple[float, float, float],
    ticker: str = "AAA",
    first: date = date(2024, 1, 2),
    bounds: list[tuple[float, float, float, float] | None] | None = None,
) -> pl.DataFrame:
    """Rows of (last_close, predicted_close, actual_close), one session apart, with interval `bounds` if given."""
    intervals = bounds or [None] * len(rows)
    return pl.DataFrame(
        {
            "ticker": [ticker] * len(rows),
            "target_session": [first + timedelta(days=i) for i in range(len(rows))],
            "last_close": [float(r[0]) for r in rows],
            "predicted_close": [float(r[1]) for r in rows],
            "actual_close": [float(r[2]) for r in rows],
            **{name: [None if b is None else float(b[i]) for b in intervals] for i, name in enumerate(BOUNDS)},
        },
        schema={
            "ticker": pl.String,
            "target_session": pl.Date,
            "last_close": pl.Float64,
            "predicted_close": pl.Float64,
            "actual_close": pl.Float64,
            **{name: pl.Float64 for name in BOUNDS},
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


def test_directional_accuracy_is_the_percentage_of_moves_called_right():
    assert directional_accuracy(THREE) == pytest.approx(200 / 3)
    assert directional_accuracy(realised((100, 101, 99))) == 0.0


def test_a_flat_forecast_hits_only_a_flat_close():
    assert directional_accuracy(realised((100, 100, 100))) == 100.0
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
    assert [f(nothing, 80) for f in (coverage, interval_width, winkler_score)] == [None] * 3


# Last close 100 throughout; 80 % bounds at +-1 and 95 % at +-2 around the forecast.
#                         last, predicted, actual    80 %            95 %           80 % score, 95 % score
WITH_INTERVALS = realised(
    (100, 100, 100.5),  # inside            inside            2                4
    (100, 100, 101),  #   on the bound      inside            2                4
    (100, 100, 103),  #   2 above           1 above           2 + 10 * 2       4 + 40 * 1
    (100, 100, 98),  #    1 below           on the bound      2 + 10 * 1       4
    bounds=[(99, 101, 98, 102)] * 4,
)


def test_coverage_is_the_percentage_of_closes_inside_the_interval_bounds_included():
    assert coverage(WITH_INTERVALS, 80) == 50.0
    assert coverage(WITH_INTERVALS, 95) == 75.0


def test_interval_width_and_winkler_score_are_in_percent_of_the_last_close():
    assert interval_width(WITH_INTERVALS, 80) == pytest.approx(2.0)
    assert interval_width(WITH_INTERVALS, 95) == pytest.approx(4.0)
    assert winkler_score(WITH_INTERVALS, 80) == pytest.approx((2 + 2 + 22 + 12) / 4)
    assert winkler_score(WITH_INTERVALS, 95) == pytest.approx((4 + 4 + 44 + 4) / 4)


def test_interval_metrics_leave_out_forecasts_without_an_interval():
    mixed = realised((100, 100, 100), (100, 100, 150), bounds=[(99, 101, 98, 102), None])

    assert coverage(mixed, 80) == 100.0
    assert window_metrics(mixed, 20)["n_interval_20"].item() == 1
    assert coverage(realised((100, 100, 150)), 80) is None


INSIDE_BOTH, INSIDE_95_ONLY, OUTSIDE_BOTH = (99, 101, 98, 102), (100.5, 101, 98, 102), (100.5, 101, 100.5, 101)


def with_coverage(inside_80: int, inside_95: int, n: int, ticker: str) -> pl.DataFrame:
    """n forecasts of a close of 100, the first `inside_80` inside both intervals, up to `inside_95` inside the 95 %."""
    bounds = [INSIDE_BOTH] * inside_80 + [INSIDE_95_ONLY] * (inside_95 - inside_80) + [OUTSIDE_BOTH] * (n - inside_95)
    return realised(*[(100, 100, 100)] * n, bounds=bounds, ticker=ticker)


def test_coverage_is_flagged_only_when_a_binomial_test_rejects_its_levels():
    tickers = pl.concat(
        [
            with_coverage(48, 57, 60, "ONLEVEL"),  # 80 % and 95 % exactly
            with_coverage(15, 18, 20, "NOISY"),  # 75 % and 90 % of 20: sampling noise, about 9 points at 80 %
            with_coverage(30, 45, 60, "TOOLOW"),  # 50 % and 75 % of 60: no chance at all
            with_coverage(60, 60, 60, "TOOWIDE"),  # 100 % at 80 %: too many inside is a miscalibration too
        ]
    )

    metrics = {row["ticker"]: row for row in window_metrics(tickers, 60).iter_rows(named=True)}

    assert {ticker: row["coverage_off_60"] for ticker, row in metrics.items()} == {
        "ONLEVEL": False,
        "NOISY": False,
        "TOOLOW": True,
        "TOOWIDE": True,
    }
    assert metrics["ONLEVEL"]["coverage_p_60"] == pytest.approx(1.0)
    assert metrics["TOOLOW"]["coverage_p_60"] < 1e-6
    assert window_metrics(THREE, 20)["coverage_off_20"].item() is None  # no interval: nothing to flag


def test_pooled_skill_weighs_each_ticker_by_its_errors_in_percent_of_price():
    # The same relative errors at prices 10 and 1000: pooled in price units the cheap one would not count.
    cheap = realised((10, 10.2, 10.1), ticker="CHEAP")  # model 0.1/10.1, naive 0.1/10.1
    dear = realised((1000, 1000, 1020), ticker="DEAR")  # model 20/1020, naive 20/1020

    assert pooled_metrics(pl.concat([cheap, dear]), 20)["skill_ratio"] == pytest.approx(1.0)
    both_worse = realised((10, 10.3, 10.1), ticker="CHEAP")  # model 0.2/10.1 against naive 0.1/10.1
    assert pooled_metrics(pl.concat([both_worse, dear]), 20)["skill_ratio"] == pytest.approx(
        (20 / 10.1 + 2000 / 1020) / (10 / 10.1 + 2000 / 1020)
    )


def test_rolling_skill_covers_each_session_with_a_full_window_only():
    # Model errors 1, 1, 3, 3; naive errors 2 throughout: over windows of 2 sessions, 0.5, 1.0, 1.5.
    rows = realised((100, 101, 102), (102, 103, 104), (104, 109, 106), (106, 111, 108))

    pooled = rolling_skill(rows, 2)
    per_ticker = rolling_skill(rows, 2, by_ticker=True)

    assert pooled["target_session"].to_list() == [date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)]
    assert per_ticker["skill_ratio"].to_list() == pytest.approx([0.5, 1.0, 1.5])
    assert per_ticker["ticker"].to_list() == ["AAA"] * 3
    assert rolling_skill(rows, 5).is_empty()


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
    assert metrics["BBB"]["worse_than_naive_2"] is False  # one forecast says nothing yet
    assert window_metrics(rows, 3).filter(pl.col("ticker") == "AAA")["mae_3"].item() == pytest.approx(10 / 3)


def test_window_metrics_leave_out_a_ticker_with_nothing_realised():
    assert window_metrics(THREE.clear(), 20).is_empty()


def test_a_model_worse_than_naive_is_flagged_when_it_loses_to_naive_more_often_than_chance_allows():
    # Naive errors 1 throughout; the model's 2 on `losses` of 20 forecasts and 0 on the others.
    def losing(losses: int, ticker: str) -> pl.DataFrame:
        return realised(*[(100, 103, 101)] * losses, *[(100, 101, 101)] * (20 - losses), ticker=ticker)

    rows = pl.concat([losing(17, "LOSER"), losing(13, "UNLUCKY"), losing(3, "WINNER")])

    metrics = {row["ticker"]: row for row in window_metrics(rows, 20).iter_rows(named=True)}

    assert metrics["LOSER"]["skill_sign_p_20"] == pytest.approx(0.002577, abs=1e-6)  # 17 of 20 at one half
    assert metrics["LOSER"]["worse_than_naive_20"] is True
    assert metrics["UNLUCKY"]["skill_ratio_20"] > 1  # 13 of 20 losses: worse, but not beyond chance
    assert metrics["UNLUCKY"]["worse_than_naive_20"] is False
    assert metrics["WINNER"]["worse_than_naive_20"] is False  # significant, the other way
    assert metrics["LOSER"]["n_decided_20"] == 20
