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
"""

from __future__ import annotations

import math

import numba
import numpy as np

PARAMETER_NAMES: tuple[str, ...] = (
    "w_f", "u_f", "b_f",
    "w_i", "u_i", "b_i",
    "w_o", "u_o", "b_o",
    "w_c", "u_c", "b_c",
)
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
#: tests/test_seed_parity.py checks them against torch itself.
NOTEBOOK_INITIAL_PARAMS: dict[str, float] = {
    "w_f": 0.49625658988952637, "u_f": 0.7682217955589294, "b_f": 0.0,
    "w_i": 0.08847743272781372, "u_i": 0.13203048706054688, "b_i": 0.0,
    "w_o": 0.30742281675338745, "u_o": 0.6340786814689636, "b_o": 0.0,
    "w_c": 0.4900934100151062, "u_c": 0.8964447379112244, "b_c": 0.0,
}


def params_to_dict(row: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(PARAMETER_NAMES, row)}


def params_from_dict(values: dict[str, float]) -> np.ndarray:
    """A (12,) parameter row from a mapping of the 12 names; missing or extra names are errors."""
    missing = [name for name in PARAMETER_NAMES if name not in values]
    extra = sorted(set(values) - set(PARAMETER_NAMES))
    if missing or extra:
        raise ValueError(f"parameters: missing {missing}, unexpected {extra}")
    return np.array([float(values[name]) for name in PARAMETER_NAMES], dtype=np.float64)


@numba.njit(cache=True, inline="always")
def _sigmoid(z: float) -> float:
    # Split by sign so exp never overflows, as torch.sigmoid does.
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@numba.njit(cache=True, inline="always")
def _act(z: float, activation: int) -> float:
    if activation == TANH:
        return math.tanh(z)
    return max(z, 0.0)


@numba.njit(cache=True, inline="always")
def _act_slope(z: float, a: float, activation: int) -> float:
    """d act(z)/dz given a = act(z); relu'(0) is 0, as in torch."""
    if activation == TANH:
        return 1.0 - a * a
    return 1.0 if z > 0.0 else 0.0


@numba.njit(cache=True)
def predict_one(p: np.ndarray, x: np.ndarray, activation: int = RELU) -> float:
    """The cell unrolled over one sample's lags `x` (x_1 first) with parameters `p` (12,)."""
    h = 0.0
    c = 0.0
    for t in range(x.shape[0]):
        xt = x[t]
        f = _sigmoid(p[W_F] * xt + p[U_F] * h + p[B_F])
        i = _sigmoid(p[W_I] * xt + p[U_I] * h + p[B_I])
        g = _act(p[W_C] * xt + p[U_C] * h + p[B_C], activation)
        c = f * c + i * g
        o = _sigmoid(p[W_O] * xt + p[U_O] * h + p[B_O])
        h = o * _act(c, activation)
    return h


@numba.njit(cache=True)
def accumulate_gradient(
    p: np.ndarray, x: np.ndarray, y: float, scale: float, grad: np.ndarray, scratch: np.ndarray,
    activation: int = RELU,
    loss: int = MSE,
) -> float:
    """Adds scale · d(pred − y)²/dp to `grad` (12,) for one sample; returns (pred − y)².
    With `loss` MAE: scale · d|pred − y|/dp and |pred − y| (the slope at 0 is 0, as in torch).

    Backpropagation through the unrolled lags, written out by hand. relu'(0) is 0,
    as in torch. `scratch` is a (7, lags + 1) work array, allocated once by the caller.
    """
    lags = x.shape[0]
    hs = scratch[0]  # h before each step; hs[lags] is the prediction
    cs = scratch[1]  # c before each step
    fs = scratch[2]  # gate values at each step
    is_ = scratch[3]
    gs = scratch[4]
    os = scratch[5]
    zs = scratch[6]  # candidate pre-activation at each step
    hs[0] = 0.0
    cs[0] = 0.0
    for t in range(lags):
        xt = x[t]
        h = hs[t]
        fs[t] = _sigmoid(p[W_F] * xt + p[U_F] * h + p[B_F])
        is_[t] = _sigmoid(p[W_I] * xt + p[U_I] * h + p[B_I])
        zs[t] = p[W_C] * xt + p[U_C] * h + p[B_C]
        gs[t] = _act(zs[t], activation)
        cs[t + 1] = fs[t] * cs[t] + is_[t] * gs[t]
        os[t] = _sigmoid(p[W_O] * xt + p[U_O] * h + p[B_O])
        hs[t + 1] = os[t] * _act(cs[t + 1], activation)
    residual = hs[lags] - y
    if loss == MAE:
        dh = (1.0 if residual > 0.0 else (-1.0 if residual < 0.0 else 0.0)) * scale
    else:
        dh = 2.0 * residual * scale
    dc = 0.0
    for t in range(lags - 1, -1, -1):
        xt = x[t]
        h_prev = hs[t]
        c_new = cs[t + 1]
        act_c = _act(c_new, activation)
        dz_o = dh * act_c * os[t] * (1.0 - os[t])
        dc += dh * os[t] * _act_slope(c_new, act_c, activation)
        dz_f = dc * cs[t] * fs[t] * (1.0 - fs[t])
        dz_i = dc * gs[t] * is_[t] * (1.0 - is_[t])
        dz_c = dc * is_[t] * _act_slope(zs[t], gs[t], activation)
        grad[W_F] += dz_f * xt
        grad[U_F] += dz_f * h_prev
        grad[B_F] += dz_f
        grad[W_I] += dz_i * xt
        grad[U_I] += dz_i * h_prev
        grad[B_I] += dz_i
        grad[W_O] += dz_o * xt
        grad[U_O] += dz_o * h_prev
        grad[B_O] += dz_o
        grad[W_C] += dz_c * xt
        grad[U_C] += dz_c * h_prev
        grad[B_C] += dz_c
        dh = p[U_F] * dz_f + p[U_I] * dz_i + p[U_O] * dz_o + p[U_C] * dz_c
        dc = dc * fs[t]
    if loss == MAE:
        return abs(residual)
    return residual * residual


@numba.njit(cache=True, parallel=True)
def predict(params: np.ndarray, x: np.ndarray, activation: int = RELU) -> np.ndarray:
    """Predictions (tickers, samples) for params (tickers, 12) and x (tickers, samples, lags)."""
    out = np.empty((x.shape[0], x.shape[1]))
    for k in numba.prange(x.shape[0]):
        for n in range(x.shape[1]):
            out[k, n] = predict_one(params[k], x[k, n], activation)
    return out
