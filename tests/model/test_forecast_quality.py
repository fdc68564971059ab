"""The default preset's options, and what it learns, on series whose answers are known.

The model options (tanh activation, absolute-error loss, Adam weight decay) are checked
against torch autograd and torch.optim.Adam, as the seed cell is in tests/model/test_batched_training.py.

Learning is measured against an oracle: on a long synthetic series whose daily log returns
follow an AR(1) with a known coefficient φ, the oracle forecasts φ · (today's return), the
best a forecast of the next close can do; the naive forecast (the last close) does nothing.
The default preset, walked session by session with its daily warm start as the cycle walks
it, must capture a stated share of the oracle's MAE gain over naive. The same walk checks
that the prediction intervals cover as stated when volatility jumps in the middle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from forecaster.calendar import NYSE, trading_calendar
from forecaster.context import CycleContext
from forecaster.model import intervals as iv
from forecaster.model.cell import ACTIVATIONS, LOSSES, accumulate_gradient, predict
from forecaster.model.closes import ClosesMatrix
from forecaster.model.presets import PRESETS
from forecaster.model.step import forecast_step
from forecaster.model.training import AdamState, fit
from forecaster.model.volatility import ewma_volatility
from forecaster.price_frame import PRICE_SCHEMA
from forecaster.prices.sources.base import FetchResult
from forecaster.store.accuracy import load_predictions
from forecaster.store.database import make_engine, upgrade
from forecaster.walks import backfill

NYSE_CALENDAR = trading_calendar(NYSE)


def _torch_cell(p: torch.Tensor, x: torch.Tensor, activation: str) -> torch.Tensor:
    """The cell in torch, for a batch x (batch, lags), x_1 first; p holds the 12 parameters in model order."""
    act = torch.tanh if activation == "tanh" else torch.relu
    h = torch.zeros(x.shape[0], dtype=x.dtype)
    c = torch.zeros(x.shape[0], dtype=x.dtype)
    for xt in x.t():
        f = torch.sigmoid(p[0] * xt + p[1] * h + p[2])
        i = torch.sigmoid(p[3] * xt + p[4] * h + p[5])
        o = torch.sigmoid(p[6] * xt + p[7] * h + p[8])
        g = act(p[9] * xt + p[10] * h + p[11])
        c = f * c + i * g
        h = o * act(c)
    return h


def _problem(tickers: int, samples: int, lags: int = 4, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(tickers, samples, lags))  # (tickers, samples, lags): returns in percent
    y = rng.normal(0.0, 1.0, size=(tickers, samples))  # (tickers, samples)
    params = rng.uniform(-0.8, 0.8, size=(tickers, 12))  # (tickers, 12)
    return x, y, params


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_hand_written_gradient_matches_torch_autograd(activation, loss):
    x, y, params = _problem(tickers=1, samples=12)
    for n in range(12):
        grad = np.zeros(12)
        value = accumulate_gradient(
            params[0], x[0, n], y[0, n], 1.0, grad, np.empty((7, 5)), ACTIVATIONS[activation], LOSSES[loss]
        )

        p = torch.tensor(params[0], requires_grad=True)
        residual = _torch_cell(p, torch.tensor(x[0, n : n + 1]), activation)[0] - float(y[0, n])
        reference = residual.abs() if loss == "mae" else residual**2
        reference.backward()
        assert value == pytest.approx(reference.item(), rel=1e-12)
        np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("activation", "loss", "weight_decay"), [("tanh", "mse", 0.0), ("tanh", "mae", 0.5), ("relu", "mse", 0.1)]
)
def test_batched_fit_with_options_matches_torch_adam(activation, loss, weight_decay):
    x, y, params = _problem(tickers=3, samples=23)
    start = params.copy()

    losses = fit(
        params,
        AdamState.fresh(3),
        x,
        y,
        epochs=5,
        batch_size=6,
        learning_rate=1e-2,
        activation=activation,
        loss=loss,
        weight_decay=weight_decay,
    )

    for k in range(3):
        p = torch.tensor(start[k], requires_grad=True)
        optimizer = torch.optim.Adam([p], lr=1e-2, weight_decay=weight_decay)
        criterion = torch.nn.L1Loss() if loss == "mae" else torch.nn.MSELoss()
        for epoch in range(5):
            batch_losses = []
            for lo in range(0, 23, 6):
                optimizer.zero_grad()
                batch = criterion(
                    _torch_cell(p, torch.tensor(x[k, lo : lo + 6]), activation), torch.tensor(y[k, lo : lo + 6])
                )
                batch.backward()
                optimizer.step()
                batch_losses.append(batch.item())
            assert losses[k, epoch] == pytest.approx(np.mean(batch_losses), rel=1e-9)
        np.testing.assert_allclose(params[k], p.detach().numpy(), rtol=1e-8, atol=1e-10)


def _one_ticker(closes: np.ndarray, width: int) -> ClosesMatrix:
    """Closes (oldest first) of ticker T on consecutive days, as the matrix a step takes."""
    days = [date(2000, 1, 3) + timedelta(days=t) for t in range(len(closes))]
    frame = pl.DataFrame({"ticker": ["T"] * len(closes), "session_date": days, "close": closes})
    return ClosesMatrix.from_frame(frame, ["T"], width)


def test_vol_scaled_returns_are_fed_oldest_first_in_units_of_the_days_volatility():
    closes = 100.0 * np.exp(np.cumsum(np.random.default_rng(6).normal(0, 0.01, size=40)))
    lags = 5
    preset = replace(PRESETS["default"], scaling="vol_scaled_returns", epochs_first_fit=3)

    result = forecast_step(_one_ticker(closes, preset.window + lags), preset, epochs=3, warm=[None], targets=[None])

    (forecast,) = result.forecasts
    returns = 100.0 * np.log(closes[1:] / closes[:-1])  # percent; returns[t - 1]: close t over close t - 1
    sigma = 100.0 * ewma_volatility(closes[None])[0, -1]  # percent, through the latest close
    # The cell sees the lags − 1 latest returns over σ, the oldest first, and its output is a move in σ.
    inputs = (returns[-(lags - 1) :] / sigma)[None, None, :]
    h = predict(forecast.checkpoint.params[None], inputs, ACTIVATIONS[preset.activation])[0, 0]
    assert forecast.predicted_close == pytest.approx(closes[-1] * np.exp(sigma * h / 100.0), rel=1e-12)
    # tanh bounds the output by 1: the forecast can move up to one day's σ, whatever σ is
    assert abs(np.log(forecast.predicted_close / closes[-1])) < sigma / 100.0


AR_COEFFICIENT = 0.45  # φ: today's log return = φ · yesterday's + noise; strongly predictable, as real prices are not
#: The share of the oracle's MAE gain over naive the default preset must capture on the AR(1)
#: walk: a requirement, not a measurement. For a linear forecast with slope β, the share is
#: (√(1 + φ²v) − √(1 + (φ − β)²v)) / (√(1 + φ²v) − 1), v = 1 / (1 − φ²) (Gaussian noise), so a
#: third of the gain means an implied slope of about 0.2 φ: clearly learning, though shrunk.
REQUIRED_SHARE = 1 / 3
WALK_TICKERS, WALK_SESSIONS = 8, 400  # forecasts per ticker in the walk
VOLATILITY_JUMP = 150  # from this forecast on, the noise is 2.5 times as large
BURN_IN = 22  # two EWMA half-lives (λ = 0.94): σ has moved 3/4 of the way to the new level


@dataclass
class Walk:
    closes: np.ndarray  # (tickers, sessions)
    returns: np.ndarray  # (tickers, sessions): log return into each close
    first: int  # index of the first close forecast from
    predicted: np.ndarray  # (tickers, WALK_SESSIONS): forecast made after close first + j
    bounds: list[iv.Bounds]  # one per forecast session


def _ar1_closes(tickers: int, sessions: int, jump_at: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, size=(tickers, sessions)) * np.where(np.arange(sessions) < jump_at, 0.01, 0.025)
    returns = np.zeros((tickers, sessions))
    for t in range(1, sessions):
        returns[:, t] = AR_COEFFICIENT * returns[:, t - 1] + noise[:, t]
    return 50.0 * np.exp(np.cumsum(returns, axis=1)), returns


@pytest.fixture(scope="module")
def walk() -> Walk:
    """The default preset walked over 400 sessions of 8 AR(1) tickers, as a cycle walks them: the
    forecast step on the last window + lags closes through each session, a full fit on the first,
    then the daily warm start from the checkpoints it returned (weights, Adam state and the
    intervals' state)."""
    preset = PRESETS["default"]
    n_closes = preset.window + preset.lags
    first = n_closes - 1
    closes, returns = _ar1_closes(WALK_TICKERS, first + WALK_SESSIONS + 1, first + VOLATILITY_JUMP, seed=2024)
    days = [date(2000, 1, 3) + timedelta(days=t) for t in range(closes.shape[1])]
    tickers = [f"AR{k}" for k in range(WALK_TICKERS)]
    warm: list = [None] * WALK_TICKERS
    predicted, bounds = [], []
    for t in range(first, first + WALK_SESSIONS):
        frame = pl.DataFrame(
            {
                "ticker": np.repeat(tickers, n_closes),
                "session_date": days[t - n_closes + 1 : t + 1] * WALK_TICKERS,
                "close": closes[:, t - n_closes + 1 : t + 1].ravel(),
            }
        )
        epochs = preset.epochs_first_fit if warm[0] is None else preset.epochs_per_session
        result = forecast_step(
            ClosesMatrix.from_frame(frame, tickers, n_closes),
            preset,
            epochs=epochs,
            warm=warm,
            targets=[days[t + 1]] * WALK_TICKERS,
        )
        assert [f.ticker for f in result.forecasts] == tickers
        warm = [f.checkpoint for f in result.forecasts]
        predicted.append([f.predicted_close for f in result.forecasts])
        bounds.append(_bounds([f.interval for f in result.forecasts]))
    return Walk(closes, returns, first, np.array(predicted).T, bounds)


def _bounds(intervals: list) -> iv.Bounds:
    """The step's intervals of one session as arrays (NaN where a ticker has none)."""

    def column(name: str) -> np.ndarray:
        return np.array([np.nan if i is None else getattr(i, name) for i in intervals])

    return iv.Bounds(
        *(column(name) for name in ("lower_80", "upper_80", "lower_95", "upper_95")),
        method=[None if i is None else i.method for i in intervals],
    )


def test_default_preset_captures_a_third_of_an_oracles_gain_on_an_ar1_series(walk):
    span = slice(walk.first, walk.first + WALK_SESSIONS)
    last, actual = walk.closes[:, span], walk.closes[:, walk.first + 1 : walk.first + WALK_SESSIONS + 1]
    oracle = last * np.exp(AR_COEFFICIENT * walk.returns[:, span])

    def mae(forecast):
        return float(np.mean(np.abs(forecast - actual) / last))

    naive_mae, model_mae, oracle_mae = mae(last), mae(walk.predicted), mae(oracle)
    share = (naive_mae - model_mae) / (naive_mae - oracle_mae)
    moves, previous = np.log(walk.predicted / last), walk.returns[:, span]
    slope = float(np.sum(moves * previous) / np.sum(previous * previous))
    detail = (
        f"MAE / naive: model {model_mae / naive_mae:.4f}, oracle {oracle_mae / naive_mae:.4f}; share of the "
        f"oracle's gain {share:.3f}; implied slope {slope:.3f} (true {AR_COEFFICIENT})"
    )
    assert share >= REQUIRED_SHARE, detail
    assert 0.0 < slope <= AR_COEFFICIENT, detail  # shrunk towards naive, never past the truth


def test_default_preset_forecasts_move_away_from_the_last_close(walk):
    span = slice(walk.first, walk.first + WALK_SESSIONS)
    move_bp = np.abs(np.log(walk.predicted / walk.closes[:, span])) * 1e4
    assert np.mean(move_bp > 1.0) > 0.8, (
        f"only {np.mean(move_bp > 1.0):.2f} of forecasts move the close by more than 1 bp"
    )


def _coverage(walk: Walk, sessions: range, level: int) -> tuple[float, int]:
    actual = walk.closes[:, walk.first + 1 : walk.first + WALK_SESSIONS + 1]  # (tickers, WALK_SESSIONS)
    covered = [
        (getattr(walk.bounds[j], f"lower_{level}") <= actual[:, j])
        & (actual[:, j] <= getattr(walk.bounds[j], f"upper_{level}"))
        for j in sessions
    ]
    return float(np.mean(covered)), int(np.size(covered))


@pytest.mark.parametrize("level", [80, 95])
@pytest.mark.parametrize(
    ("regime", "sessions", "transient_misses", "transient_scores"),
    [
        # the whole walk: the burn-in's forecasts may all miss, and its scores sit in the window after
        ("all", range(WALK_SESSIONS), BURN_IN / WALK_SESSIONS, BURN_IN / iv.WINDOW),
        ("before the jump", range(VOLATILITY_JUMP), 0.0, 0.0),
        ("after the jump", range(VOLATILITY_JUMP + BURN_IN, WALK_SESSIONS), 0.0, BURN_IN / iv.WINDOW),
    ],
)
def test_intervals_cover_as_stated_across_a_volatility_jump(
    walk, level, regime, sessions, transient_misses, transient_scores
):
    # Tolerance: 3 binomial standard errors of the n forecasts either way; above, the conformal
    # rule's slack of 1 / (W + 1), and after the jump the share of the W-score window the burn-in's
    # large scores can hold (they raise the quantile until they leave the window); below, across
    # the jump, the share of forecasts made while σ was catching up.
    coverage, n = _coverage(walk, sessions, level)
    nominal = level / 100
    sampling = 3.0 * np.sqrt(nominal * (1.0 - nominal) / n)
    low, high = nominal - sampling - transient_misses, nominal + sampling + 1.0 / (iv.WINDOW + 1) + transient_scores
    assert low <= coverage <= high, (
        f"{regime}: {level} % interval covered {coverage:.3f} of {n}, expected {low:.3f} .. {high:.3f}"
    )


def test_intervals_widen_with_the_volatility_jump(walk):
    width = np.array([np.log(b.upper_80 / b.lower_80) for b in walk.bounds])  # (sessions, tickers)
    before = np.median(width[VOLATILITY_JUMP - 50 : VOLATILITY_JUMP])
    after = np.median(width[VOLATILITY_JUMP + BURN_IN :])
    # the noise is 2.5 times as large; returns' volatility, and so the interval, by about as much
    assert 2.0 < after / before < 3.0, f"80 % width grew {after / before:.2f}×"


SESSIONS = NYSE_CALENDAR.sessions_between(date(2022, 1, 3), date(2024, 12, 31))


class AutoregressiveSource:
    """A PriceSource whose daily log returns follow an AR(1), one seeded series per ticker, on NYSE sessions."""

    name = "ar1"

    def __init__(self, tickers: Sequence[str]) -> None:
        self.closes: dict[str, np.ndarray] = {}
        for k, ticker in enumerate(tickers):
            rng = np.random.default_rng(100 + k)
            returns = np.zeros(len(SESSIONS))
            for t in range(1, len(SESSIONS)):
                returns[t] = AR_COEFFICIENT * returns[t - 1] + rng.normal(0.0, 0.01)
            self.closes[ticker] = 50.0 * (k + 1) * np.exp(np.cumsum(returns))

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        frames = []
        for ticker in tickers:
            keep = [i for i, d in enumerate(SESSIONS) if start <= d <= end]
            close = self.closes[ticker][keep]
            frames.append(
                pl.DataFrame(
                    {
                        "ticker": [ticker] * len(keep),
                        "session_date": [SESSIONS[i] for i in keep],
                        "open": close,
                        "high": close,
                        "low": close,
                        "close": close,
                        "adj_close": close,
                        "volume": np.full(len(keep), 1e6),
                    },
                    schema=PRICE_SCHEMA,
                )
            )
        return FetchResult(prices=pl.concat(frames) if frames else FetchResult().prices)


@pytest.fixture(scope="module")
def ar1_forecasts(tmp_path_factory) -> pl.DataFrame:
    """The default preset's backfill over 124 sessions of two AR(1) tickers, read back from the view."""
    path = tmp_path_factory.mktemp("quality") / "forecaster.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        tickers = ("ARA", "ARB")
        start, end = date(2024, 3, 1), date(2024, 8, 26)
        context = CycleContext(
            engine=engine, source=AutoregressiveSource(tickers), tickers=tickers, preset=PRESETS["default"]
        )
        outcomes = backfill(context, start, end)
        assert all(outcome.status == "ok" for outcome in outcomes)
        with engine.connect() as connection:
            return load_predictions(connection=connection, preset="default").drop_nulls("actual_close")
    finally:
        engine.dispose()


def test_the_cycle_forecasts_move_away_from_the_last_close(ar1_forecasts):
    """Through the real backfill (database, warm starts from stored states) the default preset's
    forecasts are its own, not a disguised naive forecast."""
    assert ar1_forecasts.height >= 2 * 120
    move_bp = ((ar1_forecasts["predicted_close"] / ar1_forecasts["last_close"]).log().abs() * 1e4).to_numpy()
    assert np.mean(move_bp > 1.0) > 0.8, (
        f"only {np.mean(move_bp > 1.0):.2f} of forecasts move the close by more than 1 bp"
    )
