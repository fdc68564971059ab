"""What the cell trains on and predicts from: a preset's view of a ClosesMatrix.

Sample s of a ticker has a target close and the `lags` closes before it; the samples are the
last `window` target sessions of the matrix, right-aligned like it: a ticker with fewer closes
has padding samples in front (`first` is the index of its first real sample). How closes
become inputs is the preset's `scaling`:

- "none" (the notebook): the raw closes x_1 (the latest) .. x_lags, and the target close.
- "vol_scaled_returns": daily log returns in percent, 100 · log(close / previous close), each
  divided by the ticker's EWMA volatility σ through the sample's latest close (both in percent,
  so they are in units of that day's σ); the lags − 1 returns are fed oldest first, the latest
  return last. The target is the next return over the same σ, and a forecast h of the cell is
  the move σ · h (forecaster.model.step turns it into a close).

The volatility series is computed once here, from the same closes, and handed on to the
prediction intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.model.closes import ClosesMatrix
from forecaster.model.presets import Preset
from forecaster.model.volatility import ewma_volatility


@dataclass(frozen=True)
class Features:
    x: np.ndarray  # (tickers, window, inputs): the cell's input sequence of each sample, in feeding order
    y: np.ndarray  # (tickers, window): each sample's target
    first: np.ndarray  # (tickers,) int64: index of each ticker's first real sample
    latest: np.ndarray  # (tickers, inputs): the inputs that predict the session after the latest close
    output_scale: np.ndarray  # (tickers,): multiplies the cell's output (σ in percent for vol_scaled_returns, else 1)
    closes: np.ndarray  # (tickers, window + lags): the closes the samples come from, NaN padding in front
    sigma: np.ndarray  # (tickers, window + lags): EWMA volatility after each close, in log-return units


def features(matrix: ClosesMatrix, preset: Preset) -> Features:
    """The preset's samples from the matrix's last window + lags closes; every ticker needs at
    least lags + 1 closes (one sample)."""
    lags, window = preset.lags, preset.window
    width = window + lags
    assert matrix.width >= width, f"a matrix of {matrix.width} closes, the preset needs {width}"
    closes = matrix.closes[:, -width:]  # (tickers, width)
    counts = np.isfinite(closes).sum(axis=1)  # (tickers,): right-aligned, so the real closes are the last `counts`
    assert np.all(counts > lags), f"every ticker needs at least {lags + 1} closes, got {counts.min()}"
    first = (width - counts).astype(np.int64)  # (tickers,): sample s has target column s + lags
    sigma = ewma_volatility(closes)  # (tickers, width)
    real = np.arange(window)[None, :] >= first[:, None]  # (tickers, window)
    safe = np.where(np.isfinite(closes), closes, 1.0)
    if preset.scaling == "none":
        lagged = np.stack(
            [safe[:, lags - j : width - j] for j in range(1, lags + 1)], axis=2
        )  # (tickers, window, lags)
        x = np.where(real[:, :, None], lagged, 0.0)
        y = np.where(real, safe[:, lags:], 0.0)
        latest = safe[:, width - 1 : width - lags - 1 : -1].copy()  # (tickers, lags): x_1 = the latest close
        scale = np.ones(len(closes))
    else:
        assert lags >= 2, f"{preset.scaling} needs at least 2 closes per sample, got lags={lags}"
        returns = np.zeros_like(closes)  # (tickers, width): return into each close, in percent
        returns[:, 1:] = 100.0 * np.log(safe[:, 1:] / safe[:, :-1])
        sigma_pct = 100.0 * sigma  # (tickers, width)
        at_sample = sigma_pct[:, lags - 1 : width - 1]  # (tickers, window): σ through each sample's latest input close
        inputs = np.stack([returns[:, i + 1 : i + 1 + window] for i in range(lags - 1)], axis=2)  # oldest first
        x = np.where(real[:, :, None], inputs / at_sample[:, :, None], 0.0)  # (tickers, window, lags - 1)
        y = np.where(real, returns[:, lags:] / at_sample, 0.0)  # (tickers, window)
        latest = returns[:, width - lags + 1 :] / sigma_pct[:, -1:]  # (tickers, lags - 1), oldest first
        scale = sigma_pct[:, -1]
    return Features(x=x, y=y, first=first, latest=latest, output_scale=scale, closes=closes, sigma=sigma)
