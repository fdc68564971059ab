"""The compiled, batched trainer is the plain autograd loop, one ticker at a time, only faster."""

from __future__ import annotations

import numpy as np
import torch

from forecaster.model.cell import params_to_dict
from forecaster.model.notebook_reference import train_like_notebook
from forecaster.model.training import AdamState, fit


def _random_problem(tickers: int, samples: int, lags: int = 4, seed: int = 7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, size=(tickers, samples, lags))  # (tickers, samples, lags)
    y = rng.uniform(0.5, 1.5, size=(tickers, samples))  # (tickers, samples)
    params = rng.uniform(-0.5, 1.0, size=(tickers, 12))  # (tickers, 12)
    return x, y, params


def test_batched_fit_matches_plain_autograd_for_each_ticker_on_random_data():
    x, y, params = _random_problem(tickers=5, samples=23)
    start = params.copy()

    losses = fit(params, AdamState.fresh(5), x, y, epochs=6, batch_size=5, learning_rate=1e-2)

    for k in range(5):
        model, reference_losses = train_like_notebook(
            torch.tensor(x[k], dtype=torch.float32), torch.tensor(y[k], dtype=torch.float32),
            epochs=6, initial_values=params_to_dict(start[k]), batch_size=5, learning_rate=1e-2,
        )
        np.testing.assert_allclose(losses[k], reference_losses, rtol=1e-4)
        trained = np.array(list(model.named_values().values()))
        np.testing.assert_allclose(params[k], trained, rtol=1e-4, atol=1e-5)


def test_a_tickers_result_does_not_depend_on_the_other_tickers_in_the_batch():
    x, y, params = _random_problem(tickers=6, samples=30)
    alone_params = params[2:3].copy()
    alone_losses = fit(alone_params, AdamState.fresh(1), x[2:3], y[2:3], epochs=4, batch_size=8, learning_rate=1e-2)

    order = np.array([5, 2, 0, 4, 1, 3])
    shuffled_params = params[order].copy()
    shuffled_losses = fit(shuffled_params, AdamState.fresh(6), x[order], y[order], epochs=4, batch_size=8, learning_rate=1e-2)

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
    short_losses = fit(short_params, AdamState.fresh(1), x[1:2, 10:], y[1:2, 10:], epochs=3, batch_size=4, learning_rate=1e-2)

    padded_x, padded_y = x.copy(), y.copy()
    padded_x[1, :10] = 0.0
    padded_y[1, :10] = 0.0
    together = params.copy()
    losses = fit(together, AdamState.fresh(2), padded_x, padded_y, epochs=3, batch_size=4, learning_rate=1e-2, first=np.array([0, 10]))

    assert np.array_equal(losses[1], short_losses[0])
    assert np.array_equal(together[1], short_params[0])
