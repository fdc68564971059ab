"""A chunk's results, written together: each ticker's checkpoint, loss curve and forecast.

One call, inside the caller's transaction (the worker's, with the 'done' mark of the tasks):
a crash leaves a ticker's step whole or absent, never a forecast without the checkpoint that
made it. Saving a step again replaces what the same keys held.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from forecaster.model.step import TickerForecast
from forecaster.store.model_states import CheckpointRow, save_checkpoints
from forecaster.store.predictions import FitSummary, ForecastRow, save_forecasts
from forecaster.store.retention import Retention, prune_written
from forecaster.store.training_losses import LossCurve, replace_losses


@dataclass(frozen=True)
class TickerResult:
    """One ticker's forecast step of a cycle, with where it is written."""

    preset: str
    as_of: date  # the session forecast from: what the checkpoint is trained through
    target_session: date
    run_id: int
    created_at: datetime
    step: TickerForecast


def write_results(results: Sequence[TickerResult], *, connection: sa.Connection, retention: Retention) -> None:
    """Writes the checkpoints, loss curves and forecasts of many tickers in three bulk statements,
    then prunes those tickers' older states and curves (store.retention)."""
    repeated = [key for key, count in Counter((r.step.ticker, r.preset, r.as_of) for r in results).items() if count > 1]
    if repeated:
        raise ValueError(f"{len(repeated)} (ticker, preset, as_of) keys given twice, e.g. {repeated[0]}")
    for r in results:
        assert r.step.checkpoint.trained_through == r.as_of, f"{r.step.ticker}: a checkpoint of another session"
    save_checkpoints(
        [CheckpointRow(r.step.ticker, r.preset, r.step.checkpoint, r.run_id, r.created_at) for r in results],
        connection=connection,
    )
    replace_losses(
        [LossCurve(r.step.ticker, r.preset, r.as_of, r.step.losses, r.run_id) for r in results], connection=connection
    )
    save_forecasts(
        [
            ForecastRow(
                ticker=r.step.ticker,
                preset=r.preset,
                as_of=r.as_of,
                target_session=r.target_session,
                predicted_close=r.step.predicted_close,
                last_close=r.step.last_close,
                interval=r.step.interval,
                run_id=r.run_id,
                created_at=r.created_at,
                fit=FitSummary(len(r.step.losses), float(r.step.losses[0]), float(r.step.losses[-1])),
            )
            for r in results
        ],
        connection=connection,
    )
    prune_written([(r.step.ticker, r.preset, r.as_of) for r in results], retention, connection=connection)
