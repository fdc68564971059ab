"""The report's tests of significance: exact binomial tails, how often they flag by chance, and the per-session
mean test of the headline numbers."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from forecaster.report.metrics import coverage_chance, window_metrics
from forecaster.report.significance import (
    TICKER_LEVEL,
    binomial_p_value,
    chance_rate,
    mean_test_p_value,
    poisson_tail,
)


def test_the_binomial_p_value_sums_every_count_no_likelier_than_the_one_seen():
    assert binomial_p_value(1, 2, 0.5) == pytest.approx(1.0)
    assert binomial_p_value(0, 2, 0.5) == pytest.approx(0.5)  # counts 0 and 2, 1/4 each
    assert binomial_p_value(17, 20, 0.5) == pytest.approx(2 * sum(_pmf(k, 20, 0.5) for k in range(17, 21)))
    # Asymmetric: 10 of 20 at 80 % sums the counts of probability <= P(10), on both sides of 16.
    p10 = _pmf(10, 20, 0.8)
    assert binomial_p_value(10, 20, 0.8) == pytest.approx(sum(q for k in range(21) if (q := _pmf(k, 20, 0.8)) <= p10))
    assert binomial_p_value(0, 0, 0.8) == 1.0


def test_chance_flags_a_right_rate_at_most_as_often_as_the_level_and_each_side_about_half():
    for n in (5, 20, 60, 500):
        for rate in (0.5, 0.8, 0.95):
            assert chance_rate(n, rate, 0.01) <= 0.01
    both = chance_rate(60, 0.5, 0.01)
    assert chance_rate(60, 0.5, 0.01, side=+1) == pytest.approx(both / 2)
    assert chance_rate(60, 0.5, 0.01, side=-1) == pytest.approx(both / 2)
    assert chance_rate(0, 0.8, 0.01) == 0.0


def test_well_calibrated_tickers_are_flagged_about_as_often_as_chance_predicts_and_a_miscalibrated_one_is():
    generator = np.random.default_rng(20261208)
    n, tickers = 60, 500
    frames = [_drawn(generator, f"T{i:03d}", n, rate_80=0.80, rate_95=0.95) for i in range(tickers)]
    frames.append(_drawn(generator, "PLANTED", n, rate_80=0.60, rate_95=0.85))

    flagged = window_metrics(pl.concat(frames), n).filter(pl.col(f"coverage_off_{n}"))["ticker"].to_list()

    expected = tickers * coverage_chance(n)
    assert expected < tickers * TICKER_LEVEL
    assert "PLANTED" in flagged
    assert poisson_tail(len(flagged) - 1, expected) > 0.001  # no more flags than chance makes plausible


def test_the_mean_test_compares_per_session_values_with_their_spread_on_students_t():
    on_target = [0.78, 0.82, 0.80, 0.79, 0.81]
    assert mean_test_p_value(on_target, 0.80) == pytest.approx(1.0)
    # mean 0.66, sd 0.0158 over 5 sessions: t = -19.8 on 4 degrees of freedom
    assert mean_test_p_value([0.66, 0.68, 0.64, 0.67, 0.65], 0.80) == pytest.approx(3.8e-5, rel=0.05)
    # 1.5 points high on sessions that vary little: with the variance independent tickers would give, not beyond chance
    steady = [0.965 + 0.005 * (-1) ** i for i in range(20)]
    assert mean_test_p_value(steady, 0.95) < 1e-6
    assert mean_test_p_value(steady, 0.95, least_variance=0.95 * 0.05 / 50) > 0.01
    assert mean_test_p_value([0.7, 0.9], 0.80) is None  # too few sessions to say
    assert mean_test_p_value([0.8, 0.8, 0.8], 0.80) == 1.0


def test_the_poisson_tail_says_how_surprising_a_count_of_flags_is():
    assert poisson_tail(0, 5.0) == 1.0
    assert poisson_tail(1, 5.0) == pytest.approx(1 - np.exp(-5.0))
    assert poisson_tail(20, 5.0) < 1e-6


def _pmf(k: int, n: int, rate: float) -> float:
    from math import comb

    return comb(n, k) * rate**k * (1 - rate) ** (n - k)


def _drawn(generator: np.random.Generator, ticker: str, n: int, *, rate_80: float, rate_95: float) -> pl.DataFrame:
    """n forecasts of a close of 100 whose closes fall inside the 80 % interval at `rate_80` and inside the 95 % one
    at `rate_95` (nested: inside the 80 % is inside the 95 %)."""
    uniform = generator.random(n)
    inside_80, inside_95 = uniform < rate_80, uniform < rate_95
    lower_80 = np.where(inside_80, 99.0, 100.5)
    lower_95 = np.where(inside_95, 98.0, 100.5)
    return pl.DataFrame(
        {
            "ticker": [ticker] * n,
            "target_session": [date(2024, 1, 1) + timedelta(days=i) for i in range(n)],
            "last_close": [100.0] * n,
            "predicted_close": [100.0] * n,
            "actual_close": [100.0] * n,
            "lower_80": lower_80,
            "upper_80": [101.0] * n,
            "lower_95": lower_95,
            "upper_95": [102.0] * n,
        }
    )
