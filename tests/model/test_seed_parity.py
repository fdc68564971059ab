"""The seed preset is the notebook's model: same losses, epoch by epoch, on the notebook's data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from forecaster.model.cell import initial_params, params_from_dict, predict
from forecaster.model.closes import ClosesMatrix
from forecaster.model.features import features
from forecaster.model.notebook_reference import notebook_initial_values
from forecaster.model.presets import PRESETS
from forecaster.model.step import TickerForecast, forecast_step
from tests.support import paths

FIXTURES = paths.FIXTURES / "seed_parity"
SEED = PRESETS["seed"]


def _reference_closes() -> ClosesMatrix:
    prices = pl.read_csv(FIXTURES / "prices.csv", try_parse_dates=True)
    closes = prices.select(
        pl.lit("SPLG").alias("ticker"), pl.col("Date").alias("session_date"), pl.col("Close").alias("close")
    )
    return ClosesMatrix.from_frame(closes, ["SPLG"], SEED.window + SEED.lags)


def _reference_init() -> np.ndarray:
    return params_from_dict(json.loads((FIXTURES / "init_params.json").read_text()))[None, :]


def _fit_300_epochs() -> TickerForecast:
    result = forecast_step(
        _reference_closes(), SEED, epochs=300, warm=[None], targets=[None], initial=_reference_init()[0]
    )
    (forecast,) = result.forecasts
    return forecast


def test_seed_preset_reproduces_the_notebooks_mean_batch_loss_at_every_one_of_300_epochs():
    expected = pl.read_csv(FIXTURES / "expected_losses.csv")["mean_batch_loss"].to_numpy()

    forecast = _fit_300_epochs()

    relative_error = np.abs(forecast.losses - expected) / np.abs(expected)
    assert relative_error.max() < 1e-3, f"worst epoch {relative_error.argmax() + 1}: {relative_error.max():.2e}"


def test_seed_preset_reproduces_the_notebooks_predictions_after_300_epochs():
    expected = pl.read_csv(FIXTURES / "expected_predictions_after_300_epochs.csv")["prediction"].to_numpy()
    samples = features(_reference_closes(), SEED)

    forecast = _fit_300_epochs()

    predictions = predict(forecast.checkpoint.params[None], samples.x)[0, samples.first[0] :]
    np.testing.assert_allclose(predictions, expected, rtol=1e-3)


def test_seed_preset_starts_from_the_notebooks_torch_rand_weights():
    from_torch = params_from_dict(notebook_initial_values())[None, :]

    assert np.array_equal(initial_params(1), from_torch)
    assert np.array_equal(initial_params(1), _reference_init())
