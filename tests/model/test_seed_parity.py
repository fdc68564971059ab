"""The seed preset is the notebook's model: same losses, epoch by epoch, on the notebook's data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from forecaster.model.cell import params_from_dict, predict
from forecaster.model.features import training_windows
from forecaster.model.forecasting import fit_and_forecast, initial_params
from forecaster.model.notebook_reference import notebook_initial_values
from forecaster.model.presets import PRESETS
from tests.support import paths

FIXTURES = paths.FIXTURES / "seed_parity"


def _reference_windows():
    prices = pl.read_csv(FIXTURES / "prices.csv", try_parse_dates=True)
    closes = prices.select(
        pl.lit("SPLG").alias("ticker"), pl.col("Date").alias("session_date"), pl.col("Close").alias("close")
    )
    return training_windows(closes, lags=4, window=PRESETS["seed"].window)


def _reference_init() -> np.ndarray:
    return params_from_dict(json.loads((FIXTURES / "init_params.json").read_text()))[None, :]


def test_seed_preset_reproduces_the_notebooks_mean_batch_loss_at_every_one_of_300_epochs():
    expected = pl.read_csv(FIXTURES / "expected_losses.csv")["mean_batch_loss"].to_numpy()

    forecast = fit_and_forecast(_reference_windows(), PRESETS["seed"], epochs=300, params=_reference_init())

    relative_error = np.abs(forecast.losses[0] - expected) / np.abs(expected)
    assert relative_error.max() < 1e-3, f"worst epoch {relative_error.argmax() + 1}: {relative_error.max():.2e}"


def test_seed_preset_reproduces_the_notebooks_predictions_after_300_epochs():
    expected = pl.read_csv(FIXTURES / "expected_predictions_after_300_epochs.csv")["prediction"].to_numpy()
    windows = _reference_windows()

    forecast = fit_and_forecast(windows, PRESETS["seed"], epochs=300, params=_reference_init())

    predictions = predict(forecast.params, windows.x)[0]
    np.testing.assert_allclose(predictions, expected, rtol=1e-3)


def test_seed_preset_starts_from_the_notebooks_torch_rand_weights():
    from_torch = params_from_dict(notebook_initial_values())[None, :]

    assert np.array_equal(initial_params(1), from_torch)
    assert np.array_equal(initial_params(1), _reference_init())
