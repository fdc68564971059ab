"""The prediction-interval method (forecaster.model.intervals): its rules, one session at a time.

Coverage on a long series with a volatility regime change is in tests/model/test_forecast_quality.py.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.calendar import NYSE, trading_calendar
from forecaster.model import intervals as iv
from forecaster.model.volatility import EWMA_DECAY, ewma_volatility

NYSE_CALENDAR = trading_calendar(NYSE)

CLOSES = 257  # what a cycle of the default preset loads per ticker: window 252 + 5 lags
DAYS = NYSE_CALENDAR.sessions_between(date(2018, 1, 2), date(2021, 12, 31))  # NYSE sessions, DAYS[t] for close t


def _random_walk(tickers: int, sessions: int, sigma: float = 0.01, seed: int = 0) -> np.ndarray:
    """(tickers, sessions) closes with Gaussian daily log returns."""
    returns = np.random.default_rng(seed).normal(0.0, sigma, size=(tickers, sessions))
    return 100.0 * np.exp(np.cumsum(returns, axis=1))


def _walk_naive(closes: np.ndarray, start: int, json_round_trip: bool = False):
    """Walks interval_step over sessions start.. of `closes`, forecasting each next close as the
    last one, as a cycle would: yields (session index, bounds)."""
    tickers = closes.shape[0]
    state = iv.IntervalState.empty(tickers)
    for t in range(start, closes.shape[1] - 1):
        pending = np.array([target == DAYS[t] for target in state.pending_target])
        realised = np.where(pending, np.log(closes[:, t] / closes[:, t - 1]), np.nan)
        window = closes[:, t - CLOSES + 1 : t + 1]
        bounds, state = iv.interval_step(state, realised, window, closes[:, t], DAYS[t + 1], DAYS[t])
        if json_round_trip:
            state = iv.state_from_json(json.loads(json.dumps(iv.state_to_json(state))))
        yield t, bounds


def test_the_quantile_is_the_split_conformal_order_statistic():
    scores = np.arange(1.0, 251.0)[None, ::-1]  # 250 scores: 250, 249, ..., 1
    assert iv.conformal_quantile(scores, 0.80)[0] == 201.0  # ⌈251 · 0.80⌉ = 201st smallest
    assert iv.conformal_quantile(scores, 0.95)[0] == 239.0  # ⌈251 · 0.95⌉ = 239th smallest
    # 19 scores: ⌈20 · 0.95⌉ = 19, the largest; 18 scores cannot give a 95 % bound
    assert iv.conformal_quantile(np.arange(1.0, 20.0)[None], 0.95)[0] == 19.0
    assert np.isnan(iv.conformal_quantile(np.arange(1.0, 19.0)[None], 0.95)[0])
    # NaN slots (a ticker with fewer scores) are not counted
    padded = np.concatenate([np.full((1, 5), np.nan), np.arange(1.0, 21.0)[None]], axis=1)
    assert iv.conformal_quantile(padded, 0.80)[0] == 17.0  # ⌈21 · 0.8⌉ = 17


def test_the_interval_is_the_quantile_of_standardised_errors_times_todays_volatility():
    closes = _random_walk(1, CLOSES, seed=1)
    state = iv.IntervalState.empty(1)
    scores = np.linspace(0.1, 3.0, 60)
    state.scores[0, -60:] = scores
    sigma = iv.volatility_scale(closes)
    bounds = iv.intervals(state, np.array([101.0]), sigma, iv.fallback_scores(closes))
    q80 = np.sort(scores)[int(np.ceil(61 * 0.8)) - 1]
    assert bounds.method == [iv.METHOD_CONFORMAL]
    assert bounds.upper_80[0] == pytest.approx(101.0 * np.exp(q80 * sigma[0]), rel=1e-12)
    assert bounds.lower_80[0] == pytest.approx(101.0 * np.exp(-q80 * sigma[0]), rel=1e-12)


def test_volatility_is_the_ewma_of_squared_log_returns():
    closes = _random_walk(2, 40, seed=2)
    returns = np.diff(np.log(closes[1]))
    variance = np.mean(returns**2)
    for r in returns:
        variance = EWMA_DECAY * variance + (1 - EWMA_DECAY) * r * r
    assert iv.volatility_scale(closes)[1] == pytest.approx(np.sqrt(variance), rel=1e-12)
    # padding at the front (a ticker with a shorter history) is skipped, not read as a return
    padded = np.concatenate([np.zeros((2, 10)), closes], axis=1)
    np.testing.assert_array_equal(iv.volatility_scale(padded), iv.volatility_scale(closes))


def test_same_inputs_give_identical_bounds():
    closes = _random_walk(3, CLOSES + 80, seed=3)
    first = [b for _, b in _walk_naive(closes, CLOSES)]
    second = [b for _, b in _walk_naive(closes, CLOSES)]
    for a, b in zip(first, second, strict=True):
        for name in ("lower_80", "upper_80", "lower_95", "upper_95"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.method == b.method


def test_a_state_stored_as_json_each_session_continues_exactly_as_one_kept_in_memory():
    closes = _random_walk(3, CLOSES + 60, seed=4)
    kept = [b for _, b in _walk_naive(closes, CLOSES)]
    stored = [b for _, b in _walk_naive(closes, CLOSES, json_round_trip=True)]
    for a, b in zip(kept, stored, strict=True):
        np.testing.assert_array_equal(a.upper_95, b.upper_95)
        np.testing.assert_array_equal(a.lower_80, b.lower_80)


def test_replay_over_stored_forecasts_equals_the_one_step_walk():
    tickers, sessions = 2, CLOSES + 40
    closes = _random_walk(tickers, sessions, seed=5)
    walked = {t: b for t, b in _walk_naive(closes, CLOSES)}
    prices = pl.DataFrame(
        {
            "ticker": [f"T{k}" for k in range(tickers) for _ in range(sessions)],
            "session_date": [DAYS[t] for _ in range(tickers) for t in range(sessions)],
            "close": closes.ravel(),
        }
    )
    predictions = pl.DataFrame(
        {
            "ticker": [f"T{k}" for t in walked for k in range(tickers)],
            "as_of": [DAYS[t] for t in walked for _ in range(tickers)],
            "target_session": [DAYS[t + 1] for t in walked for _ in range(tickers)],
            "predicted_close": [closes[k, t] for t in walked for k in range(tickers)],
        }
    )
    replayed = iv.replay(predictions, prices, closes_per_forecast=CLOSES)
    for t, bounds in walked.items():
        day = replayed.filter(pl.col("as_of") == DAYS[t]).sort("ticker")
        np.testing.assert_array_equal(day["upper_80"].to_numpy(), bounds.upper_80)
        np.testing.assert_array_equal(day["lower_95"].to_numpy(), bounds.lower_95)
        assert day["interval_method"].to_list() == bounds.method


def test_a_new_ticker_falls_back_to_its_window_until_it_has_enough_errors_of_its_own():
    closes = _random_walk(1, CLOSES + iv.MIN_SCORES + 5, seed=6)
    methods = [b.method[0] for _, b in _walk_naive(closes, CLOSES)]
    assert methods[: iv.MIN_SCORES] == [iv.METHOD_FALLBACK] * iv.MIN_SCORES
    assert set(methods[iv.MIN_SCORES :]) == {iv.METHOD_CONFORMAL}
    assert all(len(m) <= 16 for m in methods)  # predictions.interval_method is VARCHAR(16)


def test_too_short_a_history_gives_no_interval_rather_than_a_guess():
    closes = _random_walk(1, iv.MIN_SCORES, seed=7)  # 19 returns: fewer than MIN_SCORES
    bounds = iv.intervals(
        iv.IntervalState.empty(1), closes[:, -1], iv.volatility_scale(closes), iv.fallback_scores(closes)
    )
    assert bounds.method == [None]
    assert np.isnan(bounds.lower_80[0]) and np.isnan(bounds.upper_95[0])


def test_the_interval_widens_within_a_few_sessions_of_a_volatility_jump():
    # |return| 1 % every day, then 3 % from session J on: the EWMA, and so the interval, follows
    # 1 − 0.94^d of the jump in variance after d sessions; after 5: √(0.94⁵ + (1 − 0.94⁵) · 9) = 1.77×.
    sessions, jump = CLOSES + 100, CLOSES + 60
    signs = np.where(np.arange(sessions) % 2 == 0, 1.0, -1.0)
    size = np.where(np.arange(sessions) < jump, 0.01, 0.03)
    closes = 100.0 * np.exp(np.cumsum(signs * size))[None]
    widths = {t: b.upper_80[0] / b.lower_80[0] for t, b in _walk_naive(closes, CLOSES)}
    before = np.log(widths[jump - 1])
    assert np.log(widths[jump + 4]) > 1.5 * before  # 5 sessions of the new regime
    assert np.log(widths[jump + 20]) > 2.2 * before


def test_a_pending_forecast_without_its_close_is_dropped_not_paired_with_another_close():
    state = iv.IntervalState.empty(2)
    state = iv.with_pending(state, np.array([0.002, -0.01]), np.array([0.01, 0.02]), date(2024, 1, 3), date(2024, 1, 2))
    advanced = iv.advance_state(state, np.array([0.012, np.nan]))
    assert advanced.counts.tolist() == [1, 0]
    assert advanced.scores[0, -1] == pytest.approx(round(abs(0.012 - 0.002) / 0.01, iv.SCORE_DECIMALS))
    assert np.isnan(advanced.pending_return).all() and advanced.pending_target == [None, None]


def test_the_state_keeps_the_last_window_of_scores_and_stays_small():
    state = iv.IntervalState.empty(1)
    for k in range(iv.WINDOW + 30):
        state = iv.with_pending(state, np.array([0.0]), np.array([0.01]), date(2024, 1, 2), date(2024, 1, 1))
        state = iv.advance_state(state, np.array([0.01 * (1 + k % 7) / 3]))
    assert state.counts.tolist() == [iv.WINDOW]
    pending = iv.with_pending(
        state, np.array([0.00123456789]), np.array([0.0123456]), date(2024, 1, 3), date(2024, 1, 2)
    )
    stored = iv.state_to_json(pending)
    # 250 scores of at most 4 decimals (a few σ at most: "2.2910, " is 8 characters) and one pending forecast
    assert len(json.dumps(stored[0])) < iv.WINDOW * 8 + 200
    restored = iv.state_from_json(json.loads(json.dumps(stored)))
    np.testing.assert_array_equal(restored.scores, state.scores)
    assert restored.pending_return[0] == 0.00123456789 and restored.pending_target == [date(2024, 1, 3)]
    assert restored.pending_as_of == [date(2024, 1, 2)]


@pytest.mark.parametrize(
    "row",
    [
        None,
        "not a dict",
        {},
        {"version": 99, "scores": [1.0]},
        {"version": 2, "scores": [1.0, -2.0], "pending": None},
        {
            "version": 2,
            "scores": [1.0],
            "pending": {"target_session": "2024-01-02", "as_of": "2024-01-01", "predicted_return": 0.01, "sigma": -1},
        },
    ],
)
def test_an_unreadable_state_starts_empty(row):
    state = iv.state_from_json([row])
    assert state.counts.tolist() == [0] and state.pending_target == [None]


def test_a_state_of_the_first_version_keeps_its_scores_and_drops_its_pending_close():
    row = {
        "version": 1,
        "scores": [1.0, 0.5],
        "pending": {"target_session": "2024-01-02", "predicted_close": 101.0, "sigma": 0.01},
    }
    state = iv.state_from_json([row])
    assert state.counts.tolist() == [2] and state.pending_target == [None] and np.isnan(state.pending_return[0])


def test_each_tickers_bounds_depend_on_its_own_row_only():
    closes = _random_walk(4, CLOSES + 30, seed=8)
    together = [b for _, b in _walk_naive(closes, CLOSES)]
    alone = [b for _, b in _walk_naive(closes[2:3], CLOSES)]
    for a, b in zip(together, alone, strict=True):
        assert a.upper_95[2] == b.upper_95[0] and a.lower_80[2] == b.lower_80[0]


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.floats(0.0, 50.0), min_size=0, max_size=iv.WINDOW),
    predicted=st.floats(1e-3, 1e6),
    daily_sigma=st.floats(1e-4, 0.2),
)
def test_bounds_are_nested_around_the_forecast_and_positive(scores, predicted, daily_sigma):
    state = iv.IntervalState.empty(1)
    if scores:
        state.scores[0, -len(scores) :] = scores
    closes = _random_walk(1, 60, sigma=daily_sigma, seed=9)
    bounds = iv.intervals(state, np.array([predicted]), np.array([daily_sigma]), iv.fallback_scores(closes))
    assert bounds.method[0] in (iv.METHOD_CONFORMAL, iv.METHOD_FALLBACK)
    assert 0.0 < bounds.lower_95[0] <= bounds.lower_80[0] <= predicted <= bounds.upper_80[0] <= bounds.upper_95[0]


def test_ewma_volatility_of_a_flat_series_is_the_floor_not_zero():
    sigma = ewma_volatility(np.full((1, 30), 42.0))
    assert np.all(sigma > 0)
