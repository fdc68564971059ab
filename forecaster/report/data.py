"""What a day's report shows, read from the tables in one pass: forecasts, realised errors, losses, runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
import sqlalchemy as sa

from forecaster.errors import UserError
from forecaster.report.metrics import window_metrics
from forecaster.store.predictions import latest_as_of
from forecaster.store.runs import RunFailure, RunRecord, run_failures_of
from forecaster.store.schema import prediction_accuracy, predictions, runs, training_losses

#: Trailing windows, in realised forecasts per ticker; the largest is also the span of each chart.
WINDOWS = (20, 60)

_FORECAST_SCHEMA = {
    "ticker": pl.String, "target_session": pl.Date, "last_close": pl.Float64, "predicted_close": pl.Float64,
}
_REALISED_SCHEMA = {
    "ticker": pl.String, "target_session": pl.Date, "predicted_close": pl.Float64,
    "actual_close": pl.Float64, "last_close": pl.Float64,
}
_LOSS_SCHEMA = {"ticker": pl.String, "epoch": pl.Int64, "loss": pl.Float64}


@dataclass(frozen=True)
class Run:
    record: RunRecord
    failures: list[RunFailure]


@dataclass(frozen=True)
class ReportData:
    as_of: date
    preset: str
    #: One row per ticker forecast after the close of as_of: the forecast, the latest loss,
    #: and per window `n_W` (0 when nothing is realised) and the report_metrics columns.
    tickers: pl.DataFrame
    #: The last max(WINDOWS) realised forecasts per ticker (_REALISED_SCHEMA), oldest first.
    realised: pl.DataFrame
    #: Per-epoch losses of the fits trained through as_of (_LOSS_SCHEMA).
    losses: pl.DataFrame
    runs: list[Run]


def load_report(engine: sa.Engine, *, as_of: date | None, preset: str) -> ReportData:
    """Everything the report of `as_of` shows (the latest forecast session when None).

    Raises UserError when there is nothing to report: no forecast of `preset` at all,
    or neither forecasts nor runs on `as_of`.
    """
    with engine.connect() as connection:
        if as_of is None:
            as_of = latest_as_of(preset, connection=connection)
            if as_of is None:
                raise UserError(f"no forecasts of preset {preset!r} yet: nothing to report")
        forecasts = _frame(connection, _forecasts_query(preset, as_of), _FORECAST_SCHEMA)
        realised = _frame(connection, _realised_query(preset, as_of, max(WINDOWS)), _REALISED_SCHEMA)
        losses = _frame(connection, _losses_query(preset, as_of), _LOSS_SCHEMA)
        day_runs = [
            Run(record, run_failures_of(record.id, connection=connection))
            for record in (RunRecord(**row._mapping) for row in connection.execute(_runs_query(preset, as_of)))
        ]
    if forecasts.is_empty() and not day_runs:
        raise UserError(f"no forecasts of preset {preset!r} and no runs on {as_of}: nothing to report")
    return ReportData(as_of, preset, _ticker_table(forecasts, realised, losses), realised, losses, day_runs)


def _frame(connection: sa.Connection, query: sa.Select, schema: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(connection.execute(query).all(), schema=schema, orient="row")


def _forecasts_query(preset: str, as_of: date) -> sa.Select:
    p = predictions.c
    return (
        sa.select(p.ticker, p.target_session, p.last_close, p.predicted_close)
        .where(p.preset == preset, p.as_of == as_of)
        .order_by(p.ticker)
    )


def _realised_query(preset: str, as_of: date, per_ticker: int) -> sa.Select:
    """The last `per_ticker` realised forecasts of each ticker known after the close of `as_of`."""
    v = prediction_accuracy.c
    newest_first = sa.func.row_number().over(partition_by=v.ticker, order_by=v.target_session.desc())
    ranked = (
        sa.select(
            v.ticker, v.target_session, v.predicted_close, v.actual_close, v.last_close, newest_first.label("rank")
        )
        .where(v.preset == preset, v.target_session <= as_of, v.actual_close.is_not(None))
        .subquery()
    )
    r = ranked.c
    return (
        sa.select(r.ticker, r.target_session, r.predicted_close, r.actual_close, r.last_close)
        .where(r.rank <= per_ticker)
        .order_by(r.ticker, r.target_session)
    )


def _losses_query(preset: str, as_of: date) -> sa.Select:
    t = training_losses.c
    return (
        sa.select(t.ticker, t.epoch, t.loss)
        .where(t.preset == preset, t.trained_through == as_of)
        .order_by(t.ticker, t.epoch)
    )


def _runs_query(preset: str, as_of: date) -> sa.Select:
    """Runs of the session for this preset, and those recorded without a preset (fetch-only runs)."""
    return (
        sa.select(runs)
        .where(runs.c.as_of == as_of, sa.or_(runs.c.preset == preset, runs.c.preset.is_(None)))
        .order_by(runs.c.started_at, runs.c.id)
    )


def _ticker_table(forecasts: pl.DataFrame, realised: pl.DataFrame, losses: pl.DataFrame) -> pl.DataFrame:
    change = pl.col("predicted_close") - pl.col("last_close")
    table = forecasts.with_columns(
        change.alias("predicted_change"), (100.0 * change / pl.col("last_close")).alias("predicted_change_pct")
    ).join(
        losses.group_by("ticker").agg(pl.col("loss").sort_by("epoch").last().alias("training_loss")),
        on="ticker",
        how="left",
    )
    for window in WINDOWS:
        table = table.join(window_metrics(realised, window), on="ticker", how="left").with_columns(
            pl.col(f"n_{window}").fill_null(0).cast(pl.Int64)
        )
    return table.sort("ticker")
