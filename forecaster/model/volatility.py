"""The volatility of daily log returns, as an EWMA: one estimator for the default preset's
scaling and for the prediction intervals, computed from the closes a cycle already loads.

    v_t = λ · v_(t-1) + (1 − λ) · r_t²,   r_t = log(close_t / close_(t-1)),   σ_t = √v_t

started (v before the first return) at the mean of the squared returns of the closes
given, and floored at `VOLATILITY_FLOOR`. λ = 0.94 is RiskMetrics' daily decay (a
half-life of 11 sessions): after a jump in volatility, σ has moved half of the way to
the new level within 11 sessions and 95 % of the way within 48. Over the ~257 closes of
a cycle the starting value carries a weight of λ^256 ≈ 1e-7, so σ of the latest close
is, to that precision, the EWMA of the ticker's whole history.
"""

from __future__ import annotations

import numpy as np

#: λ, the weight of yesterday's variance. Chosen on the tuning spans (benchmarks/accuracy.py).
EWMA_DECAY = 0.94

#: σ never goes below this (log-return units: 0.1 bp), so a flat price series gives no division by zero.
VOLATILITY_FLOOR = 1e-5


def ewma_volatility(closes: np.ndarray, decay: float = EWMA_DECAY) -> np.ndarray:
    """σ after each close: (tickers, n) closes, oldest first -> (tickers, n), in log-return units.

    A close that is 0 or NaN is padding (rows right-aligned on the latest close put it at
    the front); a return touching padding is skipped, leaving σ as it was. A row with no
    return at all gets the floor. Each ticker's σ depends on its own row only.
    """
    assert closes.ndim == 2, f"expected (tickers, closes), got shape {closes.shape}"
    assert 0.0 < decay < 1.0, f"decay must lie in (0, 1), got {decay}"
    valid = np.isfinite(closes) & (closes > 0)  # (tickers, n)
    safe = np.where(valid, closes, 1.0)
    returns = np.log(safe[:, 1:] / safe[:, :-1])  # (tickers, n - 1)
    real = valid[:, 1:] & valid[:, :-1]  # (tickers, n - 1)
    squared = np.where(real, returns * returns, 0.0)
    count = real.sum(axis=1)  # (tickers,)
    variance = np.where(count > 0, squared.sum(axis=1) / np.maximum(count, 1), 0.0)  # (tickers,): the start
    sigma = np.empty(closes.shape)
    sigma[:, 0] = variance
    for t in range(1, closes.shape[1]):
        variance = np.where(real[:, t - 1], decay * variance + (1.0 - decay) * squared[:, t - 1], variance)
        sigma[:, t] = variance
    return np.maximum(np.sqrt(sigma), VOLATILITY_FLOOR)
