"""Full and warm-start fits of many tickers at once: mini-batch MSE with Adam, compiled.

All tickers train in one call; each ticker's arithmetic touches only its own row
of every array, so its result does not depend on which other tickers share the
call, nor on the thread that runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from forecaster.model.cell import ACTIVATIONS, LOSSES, N_PARAMETERS, accumulate_gradient

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8


@dataclass
class AdamState:
    """torch.optim.Adam's state per ticker: step count and both moment estimates."""

    step: np.ndarray  # (tickers,) int64
    exp_avg: np.ndarray  # (tickers, 12)
    exp_avg_sq: np.ndarray  # (tickers, 12)

    @classmethod
    def fresh(cls, tickers: int) -> AdamState:
        return cls(
            step=np.zeros(tickers, dtype=np.int64),
            exp_avg=np.zeros((tickers, N_PARAMETERS)),
            exp_avg_sq=np.zeros((tickers, N_PARAMETERS)),
        )

    def copy(self) -> AdamState:
        return AdamState(self.step.copy(), self.exp_avg.copy(), self.exp_avg_sq.copy())


@numba.njit(cache=True)
def _adam_step(
    p: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, step: int, lr: float, weight_decay: float
) -> None:
    """One torch.optim.Adam step (weight_decay as torch's: adds weight_decay · p to the gradient; no amsgrad), in place."""
    if weight_decay != 0.0:
        for j in range(p.shape[0]):
            grad[j] += weight_decay * p[j]
    bias_correction1 = 1.0 - ADAM_BETA1**step
    bias_correction2_sqrt = math.sqrt(1.0 - ADAM_BETA2**step)
    step_size = lr / bias_correction1
    for j in range(p.shape[0]):
        m[j] = ADAM_BETA1 * m[j] + (1.0 - ADAM_BETA1) * grad[j]
        v[j] = ADAM_BETA2 * v[j] + (1.0 - ADAM_BETA2) * grad[j] * grad[j]
        p[j] -= step_size * m[j] / (math.sqrt(v[j]) / bias_correction2_sqrt + ADAM_EPS)


@numba.njit(cache=True, parallel=True)
def _fit_kernel(
    params: np.ndarray,  # (tickers, 12), updated in place
    exp_avg: np.ndarray,  # (tickers, 12), updated in place
    exp_avg_sq: np.ndarray,  # (tickers, 12), updated in place
    step: np.ndarray,  # (tickers,), updated in place
    x: np.ndarray,  # (tickers, samples, lags)
    y: np.ndarray,  # (tickers, samples)
    first: np.ndarray,  # (tickers,) index of each ticker's first sample; samples before it are padding
    epochs: int,
    batch_size: int,
    learning_rate: float,
    activation: int,
    loss: int,
    weight_decay: float,
) -> np.ndarray:
    n_tickers = x.shape[0]
    n_samples = x.shape[1]
    losses = np.zeros((n_tickers, epochs))  # (tickers, epochs): mean batch loss per epoch
    for k in numba.prange(n_tickers):
        grad = np.empty(params.shape[1])
        scratch = np.empty((7, x.shape[2] + 1))
        p = params[k]
        start = first[k]
        n_batches = (n_samples - start + batch_size - 1) // batch_size
        for epoch in range(epochs):
            total = 0.0
            for batch in range(n_batches):
                lo = start + batch * batch_size
                hi = min(lo + batch_size, n_samples)
                grad[:] = 0.0
                batch_loss = 0.0
                scale = 1.0 / (hi - lo)
                for n in range(lo, hi):
                    batch_loss += accumulate_gradient(p, x[k, n], y[k, n], scale, grad, scratch, activation, loss)
                step[k] += 1
                _adam_step(p, grad, exp_avg[k], exp_avg_sq[k], step[k], learning_rate, weight_decay)
                total += batch_loss * scale
            losses[k, epoch] = total / n_batches
    return losses


def fit(
    params: np.ndarray,
    adam: AdamState,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    first: np.ndarray | None = None,
    activation: str = "relu",
    loss: str = "mse",
    weight_decay: float = 0.0,
) -> np.ndarray:
    """Trains every ticker's parameters in place for `epochs` passes over its samples.

    Samples are taken in the given (date) order in batches of `batch_size`, as the
    notebook's DataLoader does; a ticker's samples before `first[k]` are padding
    and are skipped. Warm start is passing yesterday's params and Adam state.
    `activation` is the cell's candidate and output activation (model.ACTIVATIONS), `loss`
    the per-sample loss averaged over a batch (model.LOSSES), `weight_decay` torch Adam's.
    Returns the per-epoch mean batch loss, shape (tickers, epochs).
    """
    n_tickers, n_samples, _ = x.shape  # (tickers, samples, lags)
    assert params.shape == (n_tickers, N_PARAMETERS), f"params {params.shape}, expected ({n_tickers}, 12)"
    assert y.shape == (n_tickers, n_samples), f"y {y.shape}, expected ({n_tickers}, {n_samples})"
    if first is None:
        first = np.zeros(n_tickers, dtype=np.int64)
    assert np.all(first < n_samples), "every ticker needs at least one sample"
    return _fit_kernel(
        params, adam.exp_avg, adam.exp_avg_sq, adam.step,
        # Writable C arrays always, so numba compiles (and caches) one signature, not one per layout.
        np.require(x, np.float64, ["C", "W"]), np.require(y, np.float64, ["C", "W"]),
        first.astype(np.int64), epochs, batch_size, learning_rate, ACTIVATIONS[activation],
        LOSSES[loss], weight_decay,
    )
