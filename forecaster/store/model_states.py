"""What one training step leaves behind, per ticker: a model state (the warm-start checkpoint),
its per-epoch losses, and the forecast made with it; written together, read back for warm starts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from forecaster.store.bulk import insert_frame, upsert
from forecaster.store.schema import model_states, predictions, training_losses


@dataclass(frozen=True)
class StoredState:
    ticker: str
    preset: str
    trained_through: date
    params: dict[str, float]  # the 12 named parameters
    optimizer_state: dict[str, Any] | None  # {"step": int, "exp_avg": [...], "exp_avg_sq": [...]}
    config_hash: str  # the preset configuration the state was trained with
    interval_state: dict[str, Any] | None = None  # the interval method's state (forecaster.model.intervals)
    unreadable: str | None = None  # why the stored JSON could not be decoded (then params is empty)


@dataclass(frozen=True)
class TrainingResultRow:
    """One ticker's training step on `trained_through` and the forecast it made."""

    ticker: str
    preset: str
    trained_through: date
    params: dict[str, float]
    optimizer_state: dict[str, Any] | None
    config_hash: str
    losses: list[float]  # epochs 1..n
    as_of: date
    target_session: date
    predicted_close: float
    last_close: float
    run_id: int
    created_at: datetime
    interval: PredictionInterval | None = None  # the bounds of the forecast, when it has them
    interval_state: dict[str, Any] | None = None  # stored with the model state, read back by the next session


@dataclass(frozen=True)
class PredictionInterval:
    """80 % and 95 % bounds of a forecast close, and how they were made."""

    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    method: str


def _interval_columns(interval: PredictionInterval | None) -> dict[str, Any]:
    if interval is None:
        return {"lower_80": None, "upper_80": None, "lower_95": None, "upper_95": None, "interval_method": None}
    return {
        "lower_80": interval.lower_80,
        "upper_80": interval.upper_80,
        "lower_95": interval.lower_95,
        "upper_95": interval.upper_95,
        "interval_method": interval.method,
    }


def save_training_results(rows: Sequence[TrainingResultRow], *, connection: sa.Connection) -> None:
    """Writes states, losses and forecasts for many tickers in four bulk statements.

    Saving a row again replaces what the same key stored before: the state and forecast
    are upserted, and the losses of the (ticker, preset, trained_through) are replaced
    whole, so a rerun with fewer epochs leaves no stale epochs behind. Of a long fit's losses,
    the epochs of `stored_epochs` are kept.
    """
    if not rows:
        return
    repeated = [
        key for key, count in Counter((r.ticker, r.preset, r.trained_through) for r in rows).items() if count > 1
    ]
    if repeated:
        raise ValueError(f"{len(repeated)} (ticker, preset, trained_through) keys given twice, e.g. {repeated[0]}")
    connection.execute(
        upsert(
            connection,
            model_states,
            update=["params", "optimizer_state", "config_hash", "run_id", "created_at", "interval_state"],
        ),
        [
            {
                "ticker": r.ticker,
                "preset": r.preset,
                "trained_through": r.trained_through,
                "params": r.params,
                "optimizer_state": r.optimizer_state,
                "config_hash": r.config_hash,
                "run_id": r.run_id,
                "created_at": r.created_at,
                "interval_state": r.interval_state,
            }
            for r in rows
        ],
    )
    _replace_losses(rows, connection)
    connection.execute(
        upsert(
            connection,
            predictions,
            update=["as_of", "predicted_close", "last_close", "run_id", "created_at", *_interval_columns(None)],
        ),
        [
            {
                "ticker": r.ticker,
                "preset": r.preset,
                "target_session": r.target_session,
                "as_of": r.as_of,
                "predicted_close": r.predicted_close,
                "last_close": r.last_close,
                "run_id": r.run_id,
                "created_at": r.created_at,
                **_interval_columns(r.interval),
            }
            for r in rows
        ],
    )


#: Epochs whose loss is stored: every one of the first 10 (all of a daily warm-start fit), then
#: every 10th and the last. A first fit of 1,000 epochs stores 109 rows instead of 1,000: the
#: curve's shape, at a tenth of the rows (5,000 new tickers would otherwise write 5 million).
LOSSES_KEPT_WHOLE = 10
LOSS_EVERY = 10


def stored_epochs(epochs: int) -> list[int]:
    """The 1-based epochs of a fit of `epochs` whose loss is stored."""
    return [e for e in range(1, epochs + 1) if e <= LOSSES_KEPT_WHOLE or e % LOSS_EVERY == 0 or e == epochs]


def _replace_losses(rows: Sequence[TrainingResultRow], connection: sa.Connection) -> None:
    connection.execute(
        training_losses.delete().where(
            training_losses.c.ticker == sa.bindparam("key_ticker"),
            training_losses.c.preset == sa.bindparam("key_preset"),
            training_losses.c.trained_through == sa.bindparam("key_trained_through"),
        ),
        [{"key_ticker": r.ticker, "key_preset": r.preset, "key_trained_through": r.trained_through} for r in rows],
    )
    epochs = [stored_epochs(len(r.losses)) for r in rows]
    losses = pl.DataFrame(
        {
            "ticker": [r.ticker for r, kept in zip(rows, epochs, strict=True) for _ in kept],
            "preset": [r.preset for r, kept in zip(rows, epochs, strict=True) for _ in kept],
            "trained_through": [r.trained_through for r, kept in zip(rows, epochs, strict=True) for _ in kept],
            "epoch": [e for kept in epochs for e in kept],
            "loss": [r.losses[e - 1] for r, kept in zip(rows, epochs, strict=True) for e in kept],
            "run_id": [r.run_id for r, kept in zip(rows, epochs, strict=True) for _ in kept],
        },
        schema={
            "ticker": pl.String,
            "preset": pl.String,
            "trained_through": pl.Date,
            "epoch": pl.Int64,
            "loss": pl.Float64,
            "run_id": pl.Int64,
        },
    )
    insert_frame(connection, training_losses, losses)


def load_latest_states(
    tickers: Sequence[str], preset: str, *, connection: sa.Connection, before: date
) -> dict[str, StoredState]:
    """For each ticker, its state of `preset` with the latest trained_through earlier than `before`."""
    if not tickers:
        return {}
    latest = (
        sa.select(model_states.c.ticker, sa.func.max(model_states.c.trained_through).label("trained_through"))
        .where(
            model_states.c.ticker.in_(list(tickers)),
            model_states.c.preset == preset,
            model_states.c.trained_through < before,
        )
        .group_by(model_states.c.ticker)
        .subquery()
    )
    # The JSON columns come back as text on SQLite (which does not check JSON) and are decoded
    # here one row at a time, so one corrupt state costs its ticker a refit, not the cycle.
    statement = sa.select(
        model_states.c.ticker,
        model_states.c.preset,
        model_states.c.trained_through,
        sa.type_coerce(model_states.c.params, sa.Text),
        sa.type_coerce(model_states.c.optimizer_state, sa.Text),
        model_states.c.config_hash,
        sa.type_coerce(model_states.c.interval_state, sa.Text),
    ).join(
        latest,
        sa.and_(
            model_states.c.ticker == latest.c.ticker,
            model_states.c.trained_through == latest.c.trained_through,
            model_states.c.preset == preset,
        ),
    )
    return {row.ticker: _stored_state(*row) for row in connection.execute(statement)}


def _stored_state(
    ticker: str,
    preset: str,
    trained_through: date,
    params: Any,
    optimizer_state: Any,
    config_hash: str,
    interval_state: Any,
) -> StoredState:
    try:
        params = json.loads(params) if isinstance(params, str) else params
        optimizer_state = json.loads(optimizer_state) if isinstance(optimizer_state, str) else optimizer_state
    except ValueError as error:
        return StoredState(ticker, preset, trained_through, {}, None, config_hash, unreadable=f"not JSON: {error}")
    try:
        interval_state = json.loads(interval_state) if isinstance(interval_state, str) else interval_state
    except ValueError:
        interval_state = None  # its intervals restart from the fallback; the model is unaffected
    return StoredState(ticker, preset, trained_through, params, optimizer_state, config_hash, interval_state)
