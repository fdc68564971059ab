"""The seed notebook's LSTM cell with scalar weights, compiled, one parameter set per ticker.

Parameters live in a (tickers, 12) float64 array in `PARAMETER_NAMES` order. The
forward pass and its hand-written gradient run in numba: the cell has 12 scalars
and each step is a handful of flops, so eager autograd would spend >99 % of its
time on per-operation overhead (see DESIGN.md, "Where the time goes").

The cell, per step, x_1 (the most recent lag) first, h and c starting at 0:
    f = sigmoid(w_f·x + u_f·h + b_f)     i = sigmoid(w_i·x + u_i·h + b_i)
    g = act(w_c·x + u_c·h + b_c)         o = sigmoid(w_o·x + u_o·h + b_o)
    c' = f·c + i·g                        h' = o·act(c')
and the prediction is h after the last lag. `act` is relu in the notebook
(`RELU`, so h ≥ 0) and tanh in a standard LSTM (`TANH`, so h can be negative).

The compiled code runs LANES tickers side by side: each function below is one loop over
the lanes of a block (see "The block"), which LLVM turns into AVX2 instructions that
advance 8 tickers (float32) or 4 (float64) at once. It does so only while the loop body
has no branch, no call and no operation that can raise, and every load and store sits at
a fixed offset from the lane; so: selects instead of `if`, an exp of our own (this numba
has no vector math library, and `math.exp` is a call), `error_model="numpy"` (a float
division that may raise ZeroDivisionError is a branch out of the loop), the activation a
compile-time literal, and the loop's trip count always the full LANES, idle lanes
included, so no lane ever runs through different (remainder) code. Each function works
in the precision of its arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np

from forecaster.model.lanemath import FLOAT_FLAGS, like, sigmoid, tanh

PARAMETER_NAMES: tuple[str, ...] = ("w_f", "u_f", "b_f", "w_i", "u_i", "b_i", "w_o", "u_o", "b_o", "w_c", "u_c", "b_c")
N_PARAMETERS = len(PARAMETER_NAMES)
W_F, U_F, B_F, W_I, U_I, B_I, W_O, U_O, B_O, W_C, U_C, B_C = range(N_PARAMETERS)

#: Activation codes of the candidate g and the output act(c), as passed to the compiled functions.
RELU = 0  # the notebook
TANH = 1  # a standard LSTM
ACTIVATIONS: dict[str, int] = {"relu": RELU, "tanh": TANH}

#: Loss codes: squared error (the notebook) or absolute error (fits the median, as MAE scores it).
MSE = 0
MAE = 1
LOSSES: dict[str, int] = {"mse": MSE, "mae": MAE}

#: The notebook's starting weights: torch.rand(1) eight times after torch.manual_seed(0), in the
#: notebook's creation order, biases 0. Written out so the daemon need not import torch;
#: tests/model/test_seed_parity.py checks them against torch itself.
NOTEBOOK_INITIAL_PARAMS: dict[str, float] = {
    "w_f": 0.49625658988952637,
    "u_f": 0.7682217955589294,
    "b_f": 0.0,
    "w_i": 0.08847743272781372,
    "u_i": 0.13203048706054688,
    "b_i": 0.0,
    "w_o": 0.30742281675338745,
    "u_o": 0.6340786814689636,
    "b_o": 0.0,
    "w_c": 0.4900934100151062,
    "u_c": 0.8964447379112244,
    "b_c": 0.0,
}

#: Tickers per block: 4 AVX2 registers of float32 (8 of float64) per quantity, enough
#: independent work in each loop to keep both FMA units busy (16 lanes measured slower).
#: After changing it or the block's rows, clear numba's cache (forecaster/model/__pycache__/*.nb*):
#: the cached kernels of training.py are only recompiled when training.py itself changes.
LANES = 32

#: The block: one flat array of rows of LANES values (row r, lane j at r · LANES + j) holding
#: the state the lane loops update. Rows at fixed offsets of one array are what lets LLVM prove
#: the loops' loads and stores independent and vectorise them without runtime alias checks.
GRAD = N_PARAMETERS  # rows 0..11: the parameters; 12..23: their gradient
DH = 2 * N_PARAMETERS  # dloss/dh, then dloss/dc, during the backward pass
DC = DH + 1
H = DC + 1  # h and c carried from step to step
C = H + 1
WEIGHT = C + 1  # each lane's weight of the current sample's loss (1 / batch size, 0 for padding)
LOSS = WEIGHT + 1  # each lane's summed loss
CELL_ROWS = LOSS + 1  # rows the cell uses; the trainer appends its own after them

#: What the backward pass needs of each lag step, kept by the forward pass in a separate array of
#: STEP_ROWS rows of LANES: h and c before the step, its gates, its candidate g and act(c').
STEP_H, STEP_C, STEP_F, STEP_I, STEP_O, STEP_G, STEP_A = range(7)
STEP_ROWS = 7


def params_to_dict(row: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(PARAMETER_NAMES, row, strict=True)}


def initial_params(tickers: int) -> np.ndarray:
    """The notebook's starting weights for every ticker: (tickers, 12)."""
    return np.tile(params_from_dict(NOTEBOOK_INITIAL_PARAMS), (tickers, 1))


def params_from_dict(values: Mapping[str, float]) -> np.ndarray:
    """A (12,) parameter row from a mapping of the 12 names; missing or extra names are errors."""
    missing = [name for name in PARAMETER_NAMES if name not in values]
    extra = sorted(set(values) - set(PARAMETER_NAMES))
    if missing or extra:
        raise ValueError(f"parameters: missing {missing}, unexpected {extra}")
    return np.array([float(values[name]) for name in PARAMETER_NAMES], dtype=np.float64)


@numba.njit(cache=True, inline="always", fastmath=FLOAT_FLAGS, error_model="numpy")
def _act(z: float, activation: int) -> float:
    zero = like(0.0, z)
    return tanh(z) if activation == TANH else (z if z > zero else zero)


@numba.njit(cache=True, inline="always", fastmath=FLOAT_FLAGS, error_model="numpy")
def _act_slope(a: float, activation: int) -> float:
    """d act(z)/dz from a = act(z): 1 − a² for tanh; for relu 1 where a > 0, else 0 (relu'(0) = 0, as torch)."""
    one, zero = like(1.0, a), like(0.0, a)
    return one - a * a if activation == TANH else (one if a > zero else zero)


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def forward_lanes(w: np.ndarray, x: np.ndarray, step: np.ndarray, activation: int) -> None:
    """One lag step of every lane: x (LANES,) is the step's input, h and c are carried in rows
    H and C of the block w, and what the backward pass needs goes to step (STEP_ROWS · LANES,)."""
    for j in range(LANES):
        xt = x[j]
        h = w[H * LANES + j]
        c = w[C * LANES + j]
        f = sigmoid(w[W_F * LANES + j] * xt + w[U_F * LANES + j] * h + w[B_F * LANES + j])
        i = sigmoid(w[W_I * LANES + j] * xt + w[U_I * LANES + j] * h + w[B_I * LANES + j])
        o = sigmoid(w[W_O * LANES + j] * xt + w[U_O * LANES + j] * h + w[B_O * LANES + j])
        g = _act(w[W_C * LANES + j] * xt + w[U_C * LANES + j] * h + w[B_C * LANES + j], activation)
        c_next = f * c + i * g
        a = _act(c_next, activation)
        step[STEP_H * LANES + j] = h
        step[STEP_C * LANES + j] = c
        step[STEP_F * LANES + j] = f
        step[STEP_I * LANES + j] = i
        step[STEP_O * LANES + j] = o
        step[STEP_G * LANES + j] = g
        step[STEP_A * LANES + j] = a
        w[C * LANES + j] = c_next
        w[H * LANES + j] = o * a


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def loss_lanes(w: np.ndarray, y: np.ndarray, loss: int) -> None:
    """After the last lag step: adds each lane's loss (pred − y)², or |pred − y|, to row LOSS where
    its WEIGHT is positive, and starts the backward pass with dloss/dh = WEIGHT · dloss/dpred
    (the absolute error's slope is sign(pred − y), 0 at 0, as torch)."""
    zero, one = like(0.0, w), like(1.0, w)
    for j in range(LANES):
        residual = w[H * LANES + j] - y[j]
        weight = w[WEIGHT * LANES + j]
        if loss == MAE:
            value = abs(residual)
            slope = (one if residual > zero else (-one if residual < zero else zero)) * weight
        else:
            value = residual * residual
            slope = like(2.0, w) * residual * weight
        w[LOSS * LANES + j] += value if weight > zero else zero
        w[DH * LANES + j] = slope
        w[DC * LANES + j] = zero


# The backward pass, derived. One lag step t maps (h, c) to (h', c'):
#     z_k = w_k·x + u_k·h + b_k for k in f, i, o, c;   f, i, o = σ(z_f), σ(z_i), σ(z_o);   g = act(z_c)
#     c' = f·c + i·g;   a = act(c');   h' = o·a
# Given the loss's gradient with respect to the step's outputs, ∂L/∂h' (row DH) and ∂L/∂c' through
# the later steps (row DC), backward_lanes computes, in this order (σ' = σ·(1 − σ); act'(a) is
# 1 − a² for tanh, and for relu 1 where a > 0, else 0, as torch's relu'(0) = 0):
#     ∂L/∂z_o = ∂L/∂h' · a · o(1 − o)                           (h' = o·a)
#     ∂L/∂c'  = DC + ∂L/∂h' · o · act'(a)                      (c' reaches L through h' and the later steps)
#     ∂L/∂z_f = ∂L/∂c' · c · f(1 − f)                           (c' = f·c + i·g)
#     ∂L/∂z_i = ∂L/∂c' · g · i(1 − i)
#     ∂L/∂z_c = ∂L/∂c' · i · act'(g)
#     ∂L/∂w_k += ∂L/∂z_k · x,   ∂L/∂u_k += ∂L/∂z_k · h,   ∂L/∂b_k += ∂L/∂z_k     (rows GRAD + k)
#     ∂L/∂h   = u_f·∂L/∂z_f + u_i·∂L/∂z_i + u_o·∂L/∂z_o + u_c·∂L/∂z_c   (h enters all four z_k) -> DH
#     ∂L/∂c   = ∂L/∂c' · f                                              -> DC
# starting after the last step from loss_lanes: ∂L/∂h = weight · 2(pred − y) for the squared error,
# weight · sign(pred − y) for the absolute one, and ∂L/∂c = 0 (c after the last step is not used).
# tests/model/test_batched_training.py checks the result against torch's autograd to 1e-9.
@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def backward_lanes(w: np.ndarray, x: np.ndarray, step: np.ndarray, activation: int) -> None:
    """Backpropagates one lag step of every lane, given what forward_lanes kept of it in step:
    from dloss/dh and dloss/dc after the step (rows DH, DC) to before it, adding to GRAD."""
    one = like(1.0, w)
    for j in range(LANES):
        xt = x[j]
        h = step[STEP_H * LANES + j]
        f = step[STEP_F * LANES + j]
        i = step[STEP_I * LANES + j]
        o = step[STEP_O * LANES + j]
        g = step[STEP_G * LANES + j]
        a = step[STEP_A * LANES + j]
        dh = w[DH * LANES + j]
        dz_o = dh * a * o * (one - o)
        dc = w[DC * LANES + j] + dh * o * _act_slope(a, activation)
        dz_f = dc * step[STEP_C * LANES + j] * f * (one - f)
        dz_i = dc * g * i * (one - i)
        dz_c = dc * i * _act_slope(g, activation)
        w[(GRAD + W_F) * LANES + j] += dz_f * xt
        w[(GRAD + U_F) * LANES + j] += dz_f * h
        w[(GRAD + B_F) * LANES + j] += dz_f
        w[(GRAD + W_I) * LANES + j] += dz_i * xt
        w[(GRAD + U_I) * LANES + j] += dz_i * h
        w[(GRAD + B_I) * LANES + j] += dz_i
        w[(GRAD + W_O) * LANES + j] += dz_o * xt
        w[(GRAD + U_O) * LANES + j] += dz_o * h
        w[(GRAD + B_O) * LANES + j] += dz_o
        w[(GRAD + W_C) * LANES + j] += dz_c * xt
        w[(GRAD + U_C) * LANES + j] += dz_c * h
        w[(GRAD + B_C) * LANES + j] += dz_c
        w[DH * LANES + j] = (
            w[U_F * LANES + j] * dz_f
            + w[U_I * LANES + j] * dz_i
            + w[U_O * LANES + j] * dz_o
            + w[U_C * LANES + j] * dz_c
        )
        w[DC * LANES + j] = dc * f


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def accumulate_gradient(
    p: np.ndarray,
    x: np.ndarray,
    y: float,
    scale: float,
    grad: np.ndarray,
    scratch: np.ndarray,
    activation: int = RELU,
    loss: int = MSE,
) -> float:
    """Adds scale · d(pred − y)²/dp to `grad` (12,) for one sample `x` (lags,) and a scale > 0;
    returns (pred − y)². With `loss` MAE: scale · d|pred − y|/dp and |pred − y|.

    The trainer's block code with the sample in lane 0 and the other lanes idle; `scratch`,
    (7, at least lags), keeps lane 0's values of each step between the passes.
    """
    lags = x.shape[0]
    w = np.zeros(CELL_ROWS * LANES)
    step = np.zeros(STEP_ROWS * LANES)
    xt = np.zeros(LANES)
    yt = np.zeros(LANES)
    for r in range(N_PARAMETERS):
        w[r * LANES] = p[r]
    w[WEIGHT * LANES] = scale
    yt[0] = y
    for t in range(lags):
        xt[0] = x[t]
        forward_lanes(w, xt, step, activation)
        for r in range(STEP_ROWS):
            scratch[r, t] = step[r * LANES]
    loss_lanes(w, yt, loss)
    for t in range(lags - 1, -1, -1):
        xt[0] = x[t]
        for r in range(STEP_ROWS):
            step[r * LANES] = scratch[r, t]
        backward_lanes(w, xt, step, activation)
    for r in range(N_PARAMETERS):
        grad[r] += w[(GRAD + r) * LANES]
    return w[LOSS * LANES]


@numba.njit(cache=True, parallel=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def predict(params: np.ndarray, x: np.ndarray, activation: int = RELU) -> np.ndarray:
    """Predictions (tickers, samples) for params (tickers, 12) and x (tickers, samples, lags),
    LANES tickers at a time through forward_lanes."""
    n_tickers, n_samples, lags = x.shape
    out = np.empty((n_tickers, n_samples))
    for block in numba.prange((n_tickers + LANES - 1) // LANES):
        first = block * LANES
        lanes = min(LANES, n_tickers - first)
        w = np.zeros(CELL_ROWS * LANES)
        step = np.empty(STEP_ROWS * LANES)
        xt = np.zeros(LANES)
        for j in range(lanes):
            for r in range(N_PARAMETERS):
                w[r * LANES + j] = params[first + j, r]
        for n in range(n_samples):
            w[H * LANES : (C + 1) * LANES] = 0.0
            for t in range(lags):
                for j in range(lanes):
                    xt[j] = x[first + j, n, t]
                forward_lanes(w, xt, step, activation)
            for j in range(lanes):
                out[first + j, n] = w[H * LANES + j]
    return out
