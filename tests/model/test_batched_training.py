"""The compiled, batched trainer is the plain autograd loop, one ticker at a time, only faster."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecaster.model.cell import LANES, params_to_dict
from forecaster.model.lanemath import sigmoid, tanh
from forecaster.model.notebook_reference import train_like_notebook
from forecaster.model.training import AdamState, fit


def _random_problem(tickers: int, samples: int, lags: int = 4, seed: int = 7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, size=(tickers, samples, lags))  # (tickers, samples, lags)
    y = rng.uniform(0.5, 1.5, size=(tickers, samples))  # (tickers, samples)
    params = rng.uniform(-0.5, 1.0, size=(tickers, 12))  # (tickers, 12)
    return x, y, params


def _assert_each_ticker_matches_the_notebook(
    x: np.ndarray,
    y: np.ndarray,
    start: np.ndarray,
    losses: np.ndarray,
    params: np.ndarray,
    *,
    tickers: int,
    rtol: float,
    atol: float,
) -> None:
    """Each of the first `tickers` tickers, trained alone by the notebook's loop from `start`
    (6 epochs, batches of 5, learning rate 1e-2), gives `losses` (to rtol) and `params`."""
    for k in range(tickers):
        model, reference_losses = train_like_notebook(
            torch.tensor(x[k], dtype=torch.float32),
            torch.tensor(y[k], dtype=torch.float32),
            epochs=6,
            initial_values=params_to_dict(start[k]),
            batch_size=5,
            learning_rate=1e-2,
        )
        np.testing.assert_allclose(losses[k], reference_losses, rtol=rtol)
        np.testing.assert_allclose(params[k], list(model.named_values().values()), rtol=rtol, atol=atol)


def test_batched_fit_matches_plain_autograd_for_each_ticker_on_random_data():
    x, y, params = _random_problem(tickers=5, samples=23)
    start = params.copy()

    losses = fit(params, AdamState.fresh(5), x, y, epochs=6, batch_size=5, learning_rate=1e-2)

    _assert_each_ticker_matches_the_notebook(x, y, start, losses, params, tickers=5, rtol=1e-4, atol=1e-5)


def test_a_tickers_result_does_not_depend_on_the_other_tickers_in_the_batch():
    x, y, params = _random_problem(tickers=6, samples=30)
    alone_params = params[2:3].copy()
    alone_losses = fit(alone_params, AdamState.fresh(1), x[2:3], y[2:3], epochs=4, batch_size=8, learning_rate=1e-2)

    order = np.array([5, 2, 0, 4, 1, 3])
    shuffled_params = params[order].copy()
    shuffled_losses = fit(
        shuffled_params, AdamState.fresh(6), x[order], y[order], epochs=4, batch_size=8, learning_rate=1e-2
    )

    assert np.array_equal(shuffled_losses[1], alone_losses[0])
    assert np.array_equal(shuffled_params[1], alone_params[0])


def test_warm_start_continues_exactly_where_the_previous_fit_stopped():
    x, y, params = _random_problem(tickers=3, samples=20)
    straight = params.copy()
    straight_losses = fit(straight, AdamState.fresh(3), x, y, epochs=10, batch_size=6, learning_rate=1e-2)

    warm = params.copy()
    adam = AdamState.fresh(3)
    first_half = fit(warm, adam, x, y, epochs=4, batch_size=6, learning_rate=1e-2)
    second_half = fit(warm, adam, x, y, epochs=6, batch_size=6, learning_rate=1e-2)

    assert np.array_equal(np.hstack([first_half, second_half]), straight_losses)
    assert np.array_equal(warm, straight)


def test_a_ticker_with_fewer_samples_trains_as_if_it_were_alone():
    x, y, params = _random_problem(tickers=2, samples=25)
    short_params = params[1:2].copy()
    short_losses = fit(
        short_params, AdamState.fresh(1), x[1:2, 10:], y[1:2, 10:], epochs=3, batch_size=4, learning_rate=1e-2
    )

    padded_x, padded_y = x.copy(), y.copy()
    padded_x[1, :10] = 0.0
    padded_y[1, :10] = 0.0
    together = params.copy()
    losses = fit(
        together,
        AdamState.fresh(2),
        padded_x,
        padded_y,
        epochs=3,
        batch_size=4,
        learning_rate=1e-2,
        first=np.array([0, 10]),
    )

    assert np.array_equal(losses[1], short_losses[0])
    assert np.array_equal(together[1], short_params[0])


def test_a_tickers_result_does_not_depend_on_its_lane_nor_on_idle_lanes_in_float32_and_float64():
    x, y, params = _random_problem(tickers=LANES + 1, samples=19)
    first = np.arange(LANES + 1) % 5  # tickers of different lengths share blocks
    for precision in (np.float32, np.float64):
        results = []
        for lane in (0, 1, LANES - 1, LANES):  # the first lanes, the last lane, the second block
            order = np.r_[np.arange(1, lane + 1), 0]  # ticker 0 after `lane` others
            trained = params[order].copy()
            losses = fit(
                trained,
                AdamState.fresh(len(order)),
                x[order].astype(precision),
                y[order].astype(precision),
                epochs=3,
                batch_size=4,
                learning_rate=1e-2,
                first=first[order],
                activation="tanh",
                loss="mae",
            )
            results.append((losses[-1], trained[-1]))
        for losses, trained in results[1:]:
            assert np.array_equal(losses, results[0][0]) and np.array_equal(trained, results[0][1])


def test_float32_training_follows_the_notebooks_float32_loop_and_keeps_tickers_independent():
    x, y, params = _random_problem(tickers=5, samples=23)
    start = params.copy()

    losses = fit(
        params,
        AdamState.fresh(5),
        x.astype(np.float32),
        y.astype(np.float32),
        epochs=6,
        batch_size=5,
        learning_rate=1e-2,
    )

    _assert_each_ticker_matches_the_notebook(x, y, start, losses, params, tickers=5, rtol=1e-5, atol=1e-6)
    alone = start[3:4].copy()
    alone_losses = fit(
        alone,
        AdamState.fresh(1),
        x[3:4].astype(np.float32),
        y[3:4].astype(np.float32),
        epochs=6,
        batch_size=5,
        learning_rate=1e-2,
    )
    assert np.array_equal(alone_losses[0], losses[3]) and np.array_equal(alone[0], params[3])


@pytest.mark.parametrize(("precision", "ulps"), [(np.float64, 4 * 2.0**-52), (np.float32, 4 * 2.0**-23)])
def test_the_branch_free_activations_match_torch_within_a_few_ulps_over_the_whole_range(precision, ulps):
    z = np.concatenate(
        [np.linspace(-30, 30, 601), -np.logspace(-30, 3, 100), np.logspace(-30, 3, 100), [0.0, -np.inf, np.inf]]
    )
    z = z.astype(precision)

    sigmoids = np.array([sigmoid(v) for v in z])
    tanhs = np.array([tanh(v) for v in z])

    tiny = np.finfo(precision).tiny * 1e8  # exp below the smallest normal number is floored there: still ~0
    np.testing.assert_allclose(sigmoids, torch.sigmoid(torch.from_numpy(z)).numpy(), rtol=ulps, atol=tiny)
    np.testing.assert_allclose(tanhs, torch.tanh(torch.from_numpy(z)).numpy(), rtol=ulps, atol=0)
    assert np.isnan(sigmoid(precision(np.nan))) and np.isnan(tanh(precision(np.nan)))
