"""How each forecast fared: the prediction_accuracy view, read into a polars frame."""

from __future__ import annotations

from datetime import date

import polars as pl
import sqlalchemy as sa

from forecaster.store.schema import prediction_accuracy

#: The frame load_predictions returns: the view's columns; the outcome columns are null until the
#: target close is stored, the interval columns for forecasts made without intervals.
ACCURACY_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "preset": pl.String(),
    "as_of": pl.Date(),
    "target_session": pl.Date(),
    "predicted_close": pl.Float64(),
    "last_close": pl.Float64(),
    "actual_close": pl.Float64(),
    "error": pl.Float64(),
    "abs_error": pl.Float64(),
    "pct_error": pl.Float64(),
    "naive_error": pl.Float64(),
    "naive_abs_error": pl.Float64(),
    "direction_hit": pl.Int64(),
    "lower_80": pl.Float64(),
    "upper_80": pl.Float64(),
    "lower_95": pl.Float64(),
    "upper_95": pl.Float64(),
    "interval_method": pl.String(),
    "covered_80": pl.Int64(),
    "covered_95": pl.Int64(),
    "winkler_80": pl.Float64(),
    "winkler_95": pl.Float64(),
    "run_id": pl.Int64(),
    "calendar": pl.String(),
}


def load_predictions(
    *,
    connection: sa.Connection,
    ticker: str | None = None,
    since: date | None = None,
    as_of: date | None = None,
    preset: str | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> pl.DataFrame:
    """Forecasts with their outcome (ACCURACY_SCHEMA), by target_session (oldest first, or
    newest first), then ticker and preset.

    `since` keeps forecasts whose target_session is on or after it, `as_of` those made after
    the close of that session; `limit` keeps the first rows of that order.
    """
    view = prediction_accuracy
    session = view.c.target_session.desc() if newest_first else view.c.target_session
    statement = sa.select(*(view.c[name] for name in ACCURACY_SCHEMA)).order_by(session, view.c.ticker, view.c.preset)
    if ticker is not None:
        statement = statement.where(view.c.ticker == ticker)
    if since is not None:
        statement = statement.where(view.c.target_session >= since)
    if as_of is not None:
        statement = statement.where(view.c.as_of == as_of)
    if preset is not None:
        statement = statement.where(view.c.preset == preset)
    if limit is not None:
        statement = statement.limit(limit)
    return pl.DataFrame(connection.execute(statement).all(), schema=ACCURACY_SCHEMA, orient="row")
