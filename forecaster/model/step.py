"""The forecast step: a chunk of tickers, from their closes and checkpoints to forecasts with their
bounds and the checkpoints of the next session.

    closes (ClosesMatrix) ─▶ features (lag windows, σ once) ─▶ fit (Adam, compiled) ─▶ predict
                                   │                                                    │
                                   └──────── σ, closes ─▶ intervals.interval_step ◀─────┘

The daily cycle (forecaster.worker) and `forecaster fit` both call `forecast_step`; this is where
a preset's scaling is undone (a cell output becomes a close), and the only place the model's
parts meet. Each ticker's arithmetic touches only its own row of every array, so its result
does not depend on the other tickers of the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from forecaster.model import intervals
from forecaster.model.cell import ACTIVATIONS, predict
from forecaster.model.checkpoint import Checkpoint, checkpoints_after, starting_point
from forecaster.model.closes import ClosesMatrix
from forecaster.model.features import features
from forecaster.model.intervals import PredictionInterval
from forecaster.model.presets import Preset
from forecaster.model.training import fit

#: Every preset trains in float32: twice the SIMD lanes of float64. The notebook itself trains in
#: float32, and the seed preset's losses come closer to it this way (3.5e-6 relative at worst
#: over the reference's 300 epochs, against 2.7e-5 in float64).
TRAINING_PRECISION = np.float32


@dataclass(frozen=True)
class TickerForecast:
    """One ticker's outcome of a step: the forecast of the session after its latest close."""

    ticker: str
    predicted_close: float
    last_close: float  # the close it was made from: the naive forecast
    interval: PredictionInterval | None  # None while the ticker has too few closes for one
    checkpoint: Checkpoint  # the warm start of its next session
    losses: np.ndarray  # (epochs,): mean batch loss per epoch, in the preset's scale


@dataclass(frozen=True)
class StepResult:
    forecasts: list[TickerForecast]  # the tickers that trained well, in the matrix's order
    diverged: list[str]  # the others: a non-finite loss, parameter or forecast


def forecast_step(
    matrix: ClosesMatrix,
    preset: Preset,
    *,
    epochs: int,
    warm: Sequence[Checkpoint | None],
    targets: Sequence[date | None],
    initial: np.ndarray | None = None,
) -> StepResult:
    """Trains every row of `matrix` for `epochs` from its checkpoint in `warm` (None: a first fit
    from the notebook's weights, or from `initial` (12,) when given) and forecasts its next close,
    for the session of `targets` (the interval state remembers it, to score it once its close is
    known). Every row needs at least preset.lags + 1 closes."""
    assert len(warm) == len(targets) == len(matrix.tickers), "one checkpoint and one target per ticker"
    inputs = features(matrix, preset)
    params, adam = starting_point(warm, preset)
    if initial is not None:
        params[[k for k, checkpoint in enumerate(warm) if checkpoint is None]] = initial
    losses = fit(
        params,
        adam,
        inputs.x.astype(TRAINING_PRECISION),
        inputs.y.astype(TRAINING_PRECISION),
        epochs=epochs,
        batch_size=preset.batch_size,
        learning_rate=preset.learning_rate,
        first=inputs.first,
        activation=preset.activation,
        loss=preset.loss,
        weight_decay=preset.weight_decay,
    )  # (tickers, epochs)
    output = predict(params, inputs.latest[:, None, :], ACTIVATIONS[preset.activation])[:, 0]  # (tickers,)
    last_close = matrix.last_close
    predicted = last_close * np.exp(inputs.output_scale * output / 100.0) if preset.scaling != "none" else output
    state = intervals.state_from_json([None if c is None else c.interval_state for c in warm])
    trained_through = matrix.last_dates()
    bounds, state = intervals.interval_step(
        state,
        intervals.realised_returns(state, matrix),
        inputs.closes,
        predicted,
        targets,
        trained_through,
        sigma=inputs.sigma,
    )
    checkpoints = checkpoints_after(preset, trained_through, params, adam, intervals.state_to_json(state))
    finite = np.isfinite(predicted) & np.isfinite(params).all(axis=1) & np.isfinite(losses).all(axis=1)
    forecasts = [
        TickerForecast(
            ticker=ticker,
            predicted_close=float(predicted[k]),
            last_close=float(last_close[k]),
            interval=bounds.interval(k),
            checkpoint=checkpoints[k],
            losses=losses[k],
        )
        for k, ticker in enumerate(matrix.tickers)
        if finite[k]
    ]
    return StepResult(forecasts, [ticker for k, ticker in enumerate(matrix.tickers) if not finite[k]])
