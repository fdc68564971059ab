"""The predictions table: forecasts written, and which are made already. (How they fared: store.accuracy.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from forecaster.model.intervals import PredictionInterval
from forecaster.store.bulk import upsert_rows
from forecaster.store.schema import forecast_series, predictions

#: The interval columns, in PredictionInterval's order (method last, as interval_method).
INTERVAL_COLUMNS = ("lower_80", "upper_80", "lower_95", "upper_95", "interval_method")
FIT_COLUMNS = ("fit_epochs", "fit_first_loss", "fit_last_loss")


@dataclass(frozen=True)
class ForecastRow:
    """A predictions row: made after the close of `as_of` for `target_session`."""

    ticker: str
    preset: str
    as_of: date
    target_session: date
    predicted_close: float
    last_close: float
    interval: PredictionInterval | None
    run_id: int
    created_at: datetime
    fit: FitSummary | None = None


@dataclass(frozen=True)
class FitSummary:
    """What a forecast keeps of the fit that made it."""

    epochs: int
    first_loss: float
    last_loss: float


def _interval_columns(interval: PredictionInterval | None) -> dict[str, Any]:
    if interval is None:
        return dict.fromkeys(INTERVAL_COLUMNS)
    values = (interval.lower_80, interval.upper_80, interval.lower_95, interval.upper_95, interval.method)
    return dict(zip(INTERVAL_COLUMNS, values, strict=True))


def _fit_columns(fit: FitSummary | None) -> dict[str, Any]:
    if fit is None:
        return dict.fromkeys(FIT_COLUMNS)
    return dict(zip(FIT_COLUMNS, (fit.epochs, fit.first_loss, fit.last_loss), strict=True))


def save_forecasts(rows: Sequence[ForecastRow], *, connection: sa.Connection) -> None:
    """Upserts forecasts in one statement: a forecast saved again replaces the one of the same key."""
    if not rows:
        return
    records = [
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
            **_fit_columns(r.fit),
        }
        for r in rows
    ]
    upsert_rows(
        connection,
        predictions,
        records,
        update=["as_of", "predicted_close", "last_close", "run_id", "created_at", *INTERVAL_COLUMNS, *FIT_COLUMNS],
    )


def forecast_tickers(*, connection: sa.Connection) -> set[str]:
    """Every ticker with a forecast, of any preset and session."""
    return set(connection.execute(sa.select(predictions.c.ticker).distinct()).scalars())


def forecast_presets(*, connection: sa.Connection) -> set[str]:
    """Every preset with a forecast."""
    return set(connection.execute(sa.select(predictions.c.preset).distinct()).scalars())


def predicted_tickers(preset: str, target_session: date, *, connection: sa.Connection) -> set[str]:
    """Tickers that already have a forecast of `preset` for `target_session`."""
    statement = sa.select(predictions.c.ticker).where(
        predictions.c.preset == preset, predictions.c.target_session == target_session
    )
    return set(connection.execute(statement).scalars())


def latest_as_of(preset: str, *, connection: sa.Connection, calendar: str | None = None) -> date | None:
    """The last session any forecast of `preset` was made after (of a ticker whose series is on
    `calendar`, when given), or None when there is none."""
    statement = sa.select(sa.func.max(predictions.c.as_of)).where(predictions.c.preset == preset)
    if calendar is not None:
        s = forecast_series.c
        statement = statement.join_from(
            predictions, forecast_series, sa.and_(s.preset == predictions.c.preset, s.ticker == predictions.c.ticker)
        ).where(s.calendar == calendar)
    return connection.execute(statement).scalar_one()
