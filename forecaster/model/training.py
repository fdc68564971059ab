"""Full and warm-start fits of many tickers at once: mini-batch gradient descent with Adam, compiled.

Tickers train in blocks of `LANES`, the block's tickers side by side in the last,
contiguous dimension of every array, so one SIMD instruction advances several
tickers and the blocks run on parallel threads. Each lane's arithmetic reads and
writes only its own lane, the same instructions in the same order for every lane,
so a ticker's result does not depend on which tickers share its block or the call,
on its lane, nor on the thread that runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from forecaster.model.cell import (
    ACTIVATIONS,
    CELL_ROWS,
    GRAD,
    LANES,
    LOSS,
    LOSSES,
    N_PARAMETERS,
    RELU,
    STEP_ROWS,
    TANH,
    WEIGHT,
    C,
    H,
    backward_lanes,
    forward_lanes,
    loss_lanes,
)
from forecaster.model.lanemath import FLOAT_FLAGS, like

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


#: The trainer's rows of a block, after the cell's (see cell.py, "The block"). Adam's per-lane
#: factors are repeated for each of the 12 parameter rows, so its update is one loop over all
#: 12 · LANES values with every operand at a fixed offset.
M = CELL_ROWS  # rows M..M+11: Adam's exp_avg; V..V+11: exp_avg_sq
V = M + N_PARAMETERS
STEP_SIZE = V + N_PARAMETERS  # 12 rows: lr / bias_correction1 of the lane's current step
BIAS_CORRECTION2_SQRT = STEP_SIZE + N_PARAMETERS  # 12 rows
ACTIVE = BIAS_CORRECTION2_SQRT + N_PARAMETERS  # 12 rows: 1 where the lane has samples in the batch, else 0
SCALE = ACTIVE + N_PARAMETERS  # 1 / size of each lane's current batch, 0 when the lane has no sample in it
TOTAL = SCALE + 1  # sum over the epoch's batches of the mean batch loss
BLOCK_ROWS = TOTAL + 1


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def _sample_weights(w: np.ndarray, count: np.ndarray, n: int) -> None:
    """WEIGHT of sample n in its batch: the lane's batch scale, 0 past the lane's count of samples."""
    for j in range(LANES):
        w[WEIGHT * LANES + j] = w[SCALE * LANES + j] if n < count[j] else like(0.0, w)


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def _adam_lanes(w: np.ndarray, weight_decay: float) -> None:
    """torch.optim.Adam's update of all 12 parameters (weight_decay as torch's: adds
    weight_decay · p to the gradient; no amsgrad) in the ACTIVE lanes; the others keep theirs."""
    decay = like(weight_decay, w)
    beta1_complement, beta2, beta2_complement = (
        like(1.0 - ADAM_BETA1, w),
        like(ADAM_BETA2, w),
        like(1.0 - ADAM_BETA2, w),
    )
    eps, zero = like(ADAM_EPS, w), like(0.0, w)
    for q in range(N_PARAMETERS * LANES):
        p = w[q]
        m = w[M * LANES + q]
        v = w[V * LANES + q]
        g = w[GRAD * LANES + q]
        g = g + decay * p if weight_decay != 0.0 else g
        m_new = m + beta1_complement * (g - m)  # torch's exp_avg.lerp_(grad, 1 - beta1)
        v_new = beta2 * v + beta2_complement * g * g
        denom = math.sqrt(v_new) / w[BIAS_CORRECTION2_SQRT * LANES + q] + eps
        p_new = p - w[STEP_SIZE * LANES + q] * m_new / denom
        active = w[ACTIVE * LANES + q] > zero
        w[q] = p_new if active else p
        w[M * LANES + q] = m_new if active else m
        w[V * LANES + q] = v_new if active else v


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def _batch_totals(w: np.ndarray) -> None:
    """Adds each lane's mean batch loss to TOTAL and clears LOSS and GRAD for the next batch."""
    for j in range(LANES):
        w[TOTAL * LANES + j] += w[LOSS * LANES + j] * w[SCALE * LANES + j]
        w[LOSS * LANES + j] = 0.0
    for q in range(N_PARAMETERS * LANES):
        w[GRAD * LANES + q] = 0.0


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def _train_block(
    w: np.ndarray,  # the block (BLOCK_ROWS · LANES), parameters and Adam moments set
    count: np.ndarray,  # (LANES,) samples of each lane; 0 for an idle lane
    step: np.ndarray,  # (LANES,) Adam step of each lane, updated in place
    x: np.ndarray,  # (samples, lags, LANES): each lane's samples from index 0, zeros after its count
    y: np.ndarray,  # (samples, LANES)
    losses: np.ndarray,  # (epochs, LANES), written
    batch_size: int,
    learning_rate: float,
    activation: int,
    loss: int,
    weight_decay: float,
) -> None:
    """Trains one block: every lane through its own batches of its own samples with the same
    code; a lane's samples past its count weigh 0 and its steps past its last batch are skipped."""
    lags = x.shape[1]
    longest = count.max()
    steps = np.empty((lags, STEP_ROWS * LANES), w.dtype)  # each step's values, kept for the backward pass
    for epoch in range(losses.shape[0]):
        w[TOTAL * LANES : (TOTAL + 1) * LANES] = 0.0
        for lo in range(0, longest, batch_size):
            for j in range(LANES):
                size = min(max(count[j] - lo, 0), batch_size)
                w[SCALE * LANES + j] = 1.0 / size if size > 0 else 0.0
                step[j] += size > 0
                bias_step = max(step[j], 1)  # an idle lane's Adam update is discarded anyway
                for r in range(N_PARAMETERS):
                    w[(STEP_SIZE + r) * LANES + j] = learning_rate / (1.0 - ADAM_BETA1**bias_step)
                    w[(BIAS_CORRECTION2_SQRT + r) * LANES + j] = math.sqrt(1.0 - ADAM_BETA2**bias_step)
                    w[(ACTIVE + r) * LANES + j] = size > 0
            for n in range(lo, min(lo + batch_size, longest)):
                _sample_weights(w, count, n)
                w[H * LANES : (C + 1) * LANES] = 0.0
                for t in range(lags):
                    forward_lanes(w, x[n, t], steps[t], activation)
                loss_lanes(w, y[n], loss)
                for t in range(lags - 1, -1, -1):
                    backward_lanes(w, x[n, t], steps[t], activation)
            _adam_lanes(w, weight_decay)
            _batch_totals(w)
        for j in range(LANES):
            losses[epoch, j] = w[TOTAL * LANES + j] / max((count[j] + batch_size - 1) // batch_size, 1)


@numba.njit(cache=True, error_model="numpy")
def _load_block(
    w: np.ndarray,
    lane_x: np.ndarray,
    lane_y: np.ndarray,
    count: np.ndarray,
    lane_step: np.ndarray,
    start: int,
    lanes: int,
    params: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    step: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    first: np.ndarray,
) -> None:
    """Tickers start .. start + lanes into the block's lanes: their samples from index 0, their
    parameters, Adam moments and step."""
    n_samples = x.shape[1]
    for j in range(lanes):
        k = start + j
        count[j] = n_samples - first[k]
        for n in range(count[j]):
            lane_x[n, :, j] = x[k, first[k] + n]
            lane_y[n, j] = y[k, first[k] + n]
        for r in range(N_PARAMETERS):
            w[r * LANES + j] = params[k, r]
            w[(M + r) * LANES + j] = exp_avg[k, r]
            w[(V + r) * LANES + j] = exp_avg_sq[k, r]
        lane_step[j] = step[k]


@numba.njit(cache=True, error_model="numpy")
def _store_block(
    w: np.ndarray,
    lane_step: np.ndarray,
    lane_losses: np.ndarray,
    start: int,
    lanes: int,
    params: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    step: np.ndarray,
    losses: np.ndarray,
) -> None:
    """The block's lanes back into tickers start .. start + lanes."""
    for j in range(lanes):
        k = start + j
        for r in range(N_PARAMETERS):
            params[k, r] = w[r * LANES + j]
            exp_avg[k, r] = w[(M + r) * LANES + j]
            exp_avg_sq[k, r] = w[(V + r) * LANES + j]
        step[k] = lane_step[j]
        losses[k] = lane_losses[:, j]


@numba.njit(cache=True, parallel=True, error_model="numpy")
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
    n_tickers, n_samples, lags = x.shape
    losses = np.zeros((n_tickers, epochs))  # (tickers, epochs): mean batch loss per epoch
    for block in numba.prange((n_tickers + LANES - 1) // LANES):
        start = block * LANES
        lanes = min(LANES, n_tickers - start)  # the rest of a short last block stays idle
        w = np.zeros(BLOCK_ROWS * LANES, x.dtype)
        lane_x = np.zeros((n_samples, lags, LANES), x.dtype)  # (samples, lags, lanes): each lane from its first sample
        lane_y = np.zeros((n_samples, LANES), x.dtype)
        count = np.zeros(LANES, dtype=np.int64)
        lane_step = np.zeros(LANES, dtype=np.int64)
        lane_losses = np.empty((epochs, LANES))
        _load_block(w, lane_x, lane_y, count, lane_step, start, lanes, params, exp_avg, exp_avg_sq, step, x, y, first)
        # The activation as a literal, so each compiled body of the lane loops is branch-free.
        if activation == TANH:
            _train_block(
                w, count, lane_step, lane_x, lane_y, lane_losses, batch_size, learning_rate, TANH, loss, weight_decay
            )
        else:
            _train_block(
                w, count, lane_step, lane_x, lane_y, lane_losses, batch_size, learning_rate, RELU, loss, weight_decay
            )
        _store_block(w, lane_step, lane_losses, start, lanes, params, exp_avg, exp_avg_sq, step, losses)
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
    The arithmetic is float32 when x is float32 (twice the lanes per instruction), else
    float64; params and Adam's state stay float64 arrays either way.
    Returns the per-epoch mean batch loss, shape (tickers, epochs).
    """
    n_tickers, n_samples, _ = x.shape  # (tickers, samples, lags)
    assert params.shape == (n_tickers, N_PARAMETERS), f"params {params.shape}, expected ({n_tickers}, 12)"
    assert y.shape == (n_tickers, n_samples), f"y {y.shape}, expected ({n_tickers}, {n_samples})"
    if first is None:
        first = np.zeros(n_tickers, dtype=np.int64)
    assert np.all(first < n_samples), "every ticker needs at least one sample"
    precision = np.float32 if x.dtype == np.float32 else np.float64
    return _fit_kernel(
        params,
        adam.exp_avg,
        adam.exp_avg_sq,
        adam.step,
        # Writable C arrays always, so numba compiles (and caches) one signature per precision.
        np.require(x, precision, ["C", "W"]),
        np.require(y, precision, ["C", "W"]),
        first.astype(np.int64),
        epochs,
        batch_size,
        learning_rate,
        ACTIVATIONS[activation],
        LOSSES[loss],
        weight_decay,
    )
