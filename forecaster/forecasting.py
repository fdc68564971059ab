"""Fit many tickers' models under a preset and forecast each one's next close.

This is where a preset's scaling is applied and undone; `training` and `model`
only ever see the numbers they are given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.features import TrainingWindows
from forecaster.model import params_from_dict, predict
from forecaster.notebook_reference import notebook_initial_values
from forecaster.presets import Preset
from forecaster.training import AdamState, fit


@dataclass
class Forecast:
    """The outcome of one fit for each ticker of a `TrainingWindows`, in the same order."""

    tickers: list[str]
    params: np.ndarray  # (tickers, 12) after training
    adam: AdamState  # after training
    losses: np.ndarray  # (tickers, epochs): mean batch loss per epoch, in the preset's scale
    predicted_close: np.ndarray  # (tickers,): forecast of the session after the latest close
    last_close: np.ndarray  # (tickers,)


def initial_params(tickers: int) -> np.ndarray:
    """The notebook's starting weights for every ticker: (tickers, 12)."""
    return np.tile(params_from_dict(notebook_initial_values()), (tickers, 1))


def _scaled(windows: TrainingWindows, preset: Preset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, targets and prediction inputs in the preset's scale."""
    if preset.scaling == "none":
        return windows.x, windows.y, windows.latest_lags
    latest = windows.x[:, :, :1]  # (tickers, samples, 1); 0 on padding rows, which are never read
    scale = np.where(latest > 0, latest, 1.0)
    return windows.x / scale, windows.y / scale[:, :, 0], windows.latest_lags / windows.latest_lags[:, :1]


def fit_and_forecast(
    windows: TrainingWindows,
    preset: Preset,
    *,
    epochs: int,
    params: np.ndarray | None = None,
    adam: AdamState | None = None,
) -> Forecast:
    """Trains from `params` and `adam` (fresh when None: a full fit) and forecasts the next close.

    The arrays passed in are not modified.
    """
    n_tickers = len(windows.tickers)
    params = initial_params(n_tickers) if params is None else params.copy()
    adam = AdamState.fresh(n_tickers) if adam is None else adam.copy()
    x, y, latest = _scaled(windows, preset)
    losses = fit(
        params, adam, x, y,
        epochs=epochs, batch_size=preset.batch_size, learning_rate=preset.learning_rate, first=windows.first,
    )
    predicted = predict(params, latest[:, None, :])[:, 0]  # (tickers,)
    last_close = windows.latest_lags[:, 0]
    if preset.scaling == "last_close":
        predicted = predicted * last_close
    return Forecast(
        tickers=windows.tickers, params=params, adam=adam, losses=losses,
        predicted_close=predicted, last_close=last_close,
    )
