"""Forecast-step results built by hand, for the tests of what the store writes and reads back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np

from forecaster.model.cell import PARAMETER_NAMES
from forecaster.model.checkpoint import Checkpoint
from forecaster.model.intervals import PredictionInterval
from forecaster.model.step import TickerForecast
from forecaster.store.results import TickerResult

CREATED = datetime(2024, 3, 5, 23, 0, tzinfo=UTC)
#: Twelve parameters whose last digits a float32 round trip would lose.
PARAMS = {name: 0.1 * k + 1e-17 * k for k, name in enumerate(PARAMETER_NAMES)}


def checkpoint(
    trained_through: date,
    *,
    params: dict[str, float] = PARAMS,
    adam_step: int = 300,
    config_hash: str = "c0ffee",
    interval_state: dict | None = None,
) -> Checkpoint:
    return Checkpoint(
        trained_through=trained_through,
        config_hash=config_hash,
        params=np.array([params[name] for name in PARAMETER_NAMES]),
        adam_step=adam_step,
        exp_avg=np.full(12, 1e-3),
        exp_avg_sq=np.full(12, 1e-7),
        interval_state=interval_state,
    )


def ticker_result(
    ticker: str,
    as_of: date,
    run_id: int,
    *,
    preset: str = "seed",
    losses: Sequence[float] = (0.5, 0.25, 0.125),
    predicted_close: float = 101.5,
    last_close: float = 100.0,
    interval: PredictionInterval | None = None,
    created_at: datetime = CREATED,
    **checkpoint_changes,
) -> TickerResult:
    """One ticker's step through `as_of`, forecasting the next calendar day."""
    step = TickerForecast(
        ticker=ticker,
        predicted_close=predicted_close,
        last_close=last_close,
        interval=interval,
        checkpoint=checkpoint(as_of, **checkpoint_changes),
        losses=np.array(losses, dtype=np.float64),
    )
    return TickerResult(preset, as_of, as_of + timedelta(days=1), run_id, created_at, step)
