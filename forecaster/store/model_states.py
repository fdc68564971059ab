"""The model_states table: each ticker's checkpoints (forecaster.model.checkpoint), one per trained session.

Written with the forecast and losses of the same step (forecaster.store.results); read back
for the next session's warm start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from forecaster.model.checkpoint import Checkpoint, UnreadableCheckpoint
from forecaster.store.bulk import upsert_rows
from forecaster.store.membership import one_of
from forecaster.store.schema import model_states


@dataclass(frozen=True)
class CheckpointRow:
    ticker: str
    preset: str
    checkpoint: Checkpoint
    run_id: int
    created_at: datetime


def save_checkpoints(rows: Sequence[CheckpointRow], *, connection: sa.Connection) -> None:
    """Upserts checkpoints in one statement: a checkpoint saved again replaces the one of the same
    (ticker, preset, trained_through)."""
    if not rows:
        return
    records = [
        {
            "ticker": row.ticker,
            "preset": row.preset,
            "trained_through": row.checkpoint.trained_through,
            "run_id": row.run_id,
            "created_at": row.created_at,
            **row.checkpoint.encode(),
        }
        for row in rows
    ]
    upsert_rows(
        connection,
        model_states,
        records,
        update=["params", "optimizer_state", "config_hash", "run_id", "created_at", "interval_state"],
    )


def load_latest_checkpoints(
    tickers: Sequence[str], preset: str, *, connection: sa.Connection, before: date
) -> dict[str, Checkpoint | UnreadableCheckpoint]:
    """For each ticker, its checkpoint of `preset` with the latest trained_through earlier than
    `before`, or why that checkpoint cannot be read (the ticker is then refitted)."""
    if not tickers:
        return {}
    latest = (
        sa.select(model_states.c.ticker, sa.func.max(model_states.c.trained_through).label("trained_through"))
        .where(
            one_of(model_states.c.ticker, tickers),
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
    return {row.ticker: _decoded(*row[1:]) for row in connection.execute(statement)}


def _decoded(
    trained_through: date, params: Any, optimizer_state: Any, config_hash: str, interval_state: Any
) -> Checkpoint | UnreadableCheckpoint:
    try:
        params = json.loads(params) if isinstance(params, str) else params
        optimizer_state = json.loads(optimizer_state) if isinstance(optimizer_state, str) else optimizer_state
    except ValueError as error:
        return UnreadableCheckpoint(f"not JSON: {error}")
    try:
        interval_state = json.loads(interval_state) if isinstance(interval_state, str) else interval_state
    except ValueError:
        interval_state = None  # its intervals restart from the fallback; the model is unaffected
    try:
        return Checkpoint.decode(
            trained_through,
            params=params,
            optimizer_state=optimizer_state,
            interval_state=interval_state,
            config_hash=config_hash,
        )
    except UnreadableCheckpoint as error:
        return error
