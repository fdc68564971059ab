"""Fit many tickers' models under a preset and forecast each one's next close.

This is where a preset's scaling is applied and undone; `training` and `model`
only ever see the numbers they are given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.model.cell import (
    ACTIVATIONS,
    NOTEBOOK_INITIAL_PARAMS,
    params_from_dict,
    predict,
)
from forecaster.model.features import TrainingWindows
from forecaster.model.presets import Preset
from forecaster.model.training import AdamState, fit
from forecaster.model.volatility import ewma_volatility

#: Every preset trains in float32: twice the SIMD lanes of float64. The notebook itself trains in
#: float32, and the seed preset's losses come closer to it this way (3.5e-6 relative at worst
#: over the reference's 300 epochs, against 2.7e-5 in float64); the default preset's inputs are
#: percent returns of order 1.
TRAINING_PRECISION = np.float32


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
    return np.tile(params_from_dict(NOTEBOOK_INITIAL_PARAMS), (tickers, 1))


def _log_returns_pct(closes: np.ndarray) -> np.ndarray:
    """100 · log(x_j / x_(j+1)) along the last axis (x_1 first): (..., lags) closes -> (..., lags - 1).

    Padding rows (zeros) give zeros; they are never trained on.
    """
    safe = np.where(closes > 0, closes, 1.0)
    return 100.0 * np.log(safe[..., :-1] / safe[..., 1:])


def _close_series(windows: TrainingWindows) -> np.ndarray:
    """Each ticker's closes behind its samples, oldest first: (tickers, samples + lags), 0 on padding.

    Sample n's lags are closes n .. n + lags − 1 of the series (x_1 the last of them) and its
    target is close n + lags, so the series ends with the latest close.
    """
    n_tickers, n_samples, lags = windows.x.shape
    series = np.zeros((n_tickers, n_samples + lags))
    series[:, lags:] = windows.y  # (tickers, samples): 0 on padding rows
    rows = np.arange(n_tickers)
    for j in range(lags):  # the first real sample's lags, x_lags first
        series[rows, windows.first + j] = windows.x[rows, windows.first, lags - 1 - j]
    return series


@dataclass
class Scaled:
    """A preset's view of the windows: what the cell trains on and predicts from."""

    x: np.ndarray  # (tickers, samples, inputs)
    y: np.ndarray  # (tickers, samples)
    latest: np.ndarray  # (tickers, inputs): the inputs that predict the next session
    output_scale: np.ndarray  # (tickers,): multiplies the cell's output (σ in percent for "vol_scaled_returns", else 1)


def _scaled(windows: TrainingWindows, preset: Preset) -> Scaled:
    """Inputs, targets and prediction inputs in the preset's scale."""
    if preset.scaling == "none":
        return Scaled(windows.x, windows.y, windows.latest_lags, np.ones(len(windows.tickers)))
    assert preset.lags >= 2, f"{preset.scaling} needs at least 2 closes per sample, got lags={preset.lags}"
    lags = preset.lags
    previous = np.where(windows.x[:, :, 0] > 0, windows.x[:, :, 0], 1.0)  # (tickers, samples): x_1; 0 on padding rows
    target = np.where(windows.y > 0, windows.y, 1.0)
    returns = _log_returns_pct(windows.x)  # (tickers, samples, lags - 1), the latest return first
    latest_returns = _log_returns_pct(windows.latest_lags)  # (tickers, lags - 1)
    sigma = 100.0 * ewma_volatility(_close_series(windows))  # (tickers, samples + lags): percent, after each close
    at_sample = sigma[:, lags - 1 : lags - 1 + returns.shape[1]]  # (tickers, samples): σ through each sample's x_1
    return Scaled(
        (returns / at_sample[:, :, None])[:, :, ::-1].copy(),  # (tickers, samples, lags - 1): oldest return first
        100.0 * np.log(target / previous) / at_sample,  # (tickers, samples)
        (latest_returns / sigma[:, -1:])[:, ::-1].copy(),  # (tickers, lags - 1): oldest first
        sigma[:, -1],
    )


def _unscaled(predicted: np.ndarray, last_close: np.ndarray, output_scale: np.ndarray, preset: Preset) -> np.ndarray:
    """The cell's outputs (tickers,) as closes."""
    if preset.scaling == "vol_scaled_returns":
        return last_close * np.exp(output_scale * predicted / 100.0)
    return predicted


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
    scaled = _scaled(windows, preset)
    x, y, latest = scaled.x, scaled.y, scaled.latest
    losses = fit(
        params,
        adam,
        x.astype(TRAINING_PRECISION),
        y.astype(TRAINING_PRECISION),
        epochs=epochs,
        batch_size=preset.batch_size,
        learning_rate=preset.learning_rate,
        first=windows.first,
        activation=preset.activation,
        loss=preset.loss,
        weight_decay=preset.weight_decay,
    )
    predicted = predict(params, latest[:, None, :], ACTIVATIONS[preset.activation])[:, 0]  # (tickers,)
    last_close = windows.latest_lags[:, 0]
    predicted = _unscaled(predicted, last_close, scaled.output_scale, preset)
    return Forecast(
        tickers=windows.tickers,
        params=params,
        adam=adam,
        losses=losses,
        predicted_close=predicted,
        last_close=last_close,
    )
