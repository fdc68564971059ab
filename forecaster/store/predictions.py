"""The predictions table: which forecasts are made already. (How they fared: store.accuracy.)

Forecasts are written by model_states.save_training_results, with the state that made them.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from forecaster.store.schema import predictions


def predicted_tickers(preset: str, target_session: date, *, connection: sa.Connection) -> set[str]:
    """Tickers that already have a forecast of `preset` for `target_session`."""
    statement = sa.select(predictions.c.ticker).where(
        predictions.c.preset == preset, predictions.c.target_session == target_session
    )
    return set(connection.execute(statement).scalars())


def count_for_run(run_id: int, *, connection: sa.Connection) -> int:
    """Forecasts written by a run."""
    return connection.execute(sa.select(sa.func.count()).where(predictions.c.run_id == run_id)).scalar_one()


def latest_as_of(preset: str, *, connection: sa.Connection) -> date | None:
    """The last session any forecast of `preset` was made after, or None when there is none."""
    statement = sa.select(sa.func.max(predictions.c.as_of)).where(predictions.c.preset == preset)
    return connection.execute(statement).scalar_one()
