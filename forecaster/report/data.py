"""What a day's report shows, read from the tables in one pass: forecasts, realised errors, losses, runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import cast

import polars as pl
import sqlalchemy as sa

from forecaster.calendar import NYSE
from forecaster.errors import UserError
from forecaster.prices.delisted import ProbablyDelisted, probably_delisted
from forecaster.report.metrics import pooled_metrics, window_metrics
from forecaster.store.membership import one_of
from forecaster.store.predictions import latest_as_of
from forecaster.store.price_events import events_of
from forecaster.store.runs import RunFailure, RunRecord, run_failures_of
from forecaster.store.schema import forecast_series, prediction_accuracy, predictions, runs

#: Trailing windows, in realised forecasts per ticker; the largest is also the span of each chart.
WINDOWS = (20, 60)
#: Tickers are ranked by their skill over this window, worst first: the longest, so the least noisy.
RANK_WINDOW = max(WINDOWS)
#: The skill-over-time chart shows skill over the last SKILL_WINDOW sessions at each session.
SKILL_WINDOW = 20
#: How many of the worst and best tickers get a chart by default.
DEFAULT_PER_END = 5
#: Sessions without data before a failing ticker is called probably delisted (FORECASTER_DELISTED_AFTER_SESSIONS).
DELISTED_AFTER = 5

_BOUNDS = ("lower_80", "upper_80", "lower_95", "upper_95")
_FORECAST_SCHEMA = {
    "ticker": pl.String,
    "calendar": pl.String,
    "as_of": pl.Date,
    "target_session": pl.Date,
    "last_close": pl.Float64,
    "predicted_close": pl.Float64,
    **{bound: pl.Float64 for bound in _BOUNDS},
}
_REALISED_SCHEMA = {
    "ticker": pl.String,
    "target_session": pl.Date,
    "predicted_close": pl.Float64,
    "actual_close": pl.Float64,
    "last_close": pl.Float64,
    **{bound: pl.Float64 for bound in _BOUNDS},
}
_LOSS_SCHEMA = {"ticker": pl.String, "trained_through": pl.Date, "loss": pl.Float64}


@dataclass(frozen=True)
class Run:
    record: RunRecord
    failures: list[RunFailure]


@dataclass(frozen=True)
class ChartGroup:
    title: str
    tickers: list[str]


@dataclass(frozen=True)
class ReportData:
    as_of: date
    preset: str
    #: One row per ticker forecast after the close of as_of, worst skill over RANK_WINDOW first (none last):
    #: the forecast and its bounds, the latest training loss, and per window `n_W` (0 when nothing is
    #: realised) and the window_metrics columns.
    tickers: pl.DataFrame
    #: The last max(WINDOWS) + SKILL_WINDOW - 1 realised forecasts per ticker (_REALISED_SCHEMA), oldest first.
    realised: pl.DataFrame
    runs: list[Run]
    #: Window -> pooled_metrics over the tickers of `tickers`.
    pooled: dict[int, dict[str, float | None]]
    #: The tickers to chart, in groups (chart_groups).
    chart_groups: list[ChartGroup]
    #: The last epoch's loss of each fit of a charted ticker trained through a session of `realised` (_LOSS_SCHEMA).
    losses: pl.DataFrame
    #: What the ingest saw in the prices of the report's tickers over the sessions it scores
    #: (forecaster.store.price_events.events_of: ticker, session_date, kind, factor, detail, seen_at).
    events: pl.DataFrame
    #: The tickers failed in the session with no data from the source for many sessions in a row.
    delisted: list[ProbablyDelisted]

    @property
    def failures(self) -> dict[str, RunFailure]:
        """Tickers that failed in this session's runs and have no forecast: ticker -> its latest failure."""
        return _failures(self.runs, self.tickers)

    @property
    def has_intervals(self) -> bool:
        """Whether any forecast shown (realised or next) has a prediction interval."""
        return any(frame["lower_80"].is_not_null().any() for frame in (self.tickers, self.realised))


def load_report(
    engine: sa.Engine,
    *,
    as_of: date | None,
    preset: str,
    charts: int = DEFAULT_PER_END,
    delisted_after: int = DELISTED_AFTER,
) -> ReportData:
    """Everything the report of `as_of` shows (the latest forecast session when None), with `charts`
    per end; a failed ticker without data for `delisted_after` sessions is called probably delisted.

    Raises UserError when there is nothing to report: no forecast of `preset` at all,
    or neither forecasts nor runs on `as_of`.
    """
    span = max(WINDOWS) + SKILL_WINDOW - 1
    with engine.connect() as connection:
        if as_of is None:
            as_of = latest_as_of(preset, connection=connection)
            if as_of is None:
                raise UserError(f"no forecasts of preset {preset!r} yet: nothing to report")
        forecasts = _frame(connection, _forecasts_query(preset, as_of), _FORECAST_SCHEMA)
        realised = _frame(connection, _realised_query(preset, as_of, span), _REALISED_SCHEMA)
        made_from = cast(date | None, forecasts["as_of"].min()) or as_of
        latest_losses = _frame(
            connection, _final_losses_query(preset, forecasts["ticker"].to_list(), made_from, as_of), _LOSS_SCHEMA
        ).join(forecasts.select("ticker", pl.col("as_of").alias("trained_through")), on=["ticker", "trained_through"])
        day_runs = [
            Run(record, run_failures_of(record.id, connection=connection))
            for record in (RunRecord(**row._mapping) for row in connection.execute(_runs_query(preset, as_of)))
        ]
        if forecasts.is_empty() and not day_runs:
            raise UserError(f"no forecasts of preset {preset!r} and no runs on {as_of}: nothing to report")
        tickers = _ticker_table(forecasts, realised, latest_losses)
        with_history = set(realised["ticker"])
        groups = chart_groups(tickers, [t for t in _failures(day_runs, tickers) if t in with_history], charts)
        charted = [ticker for group in groups for ticker in group.tickers]
        first = cast(date | None, realised["target_session"].min()) or as_of
        losses = _frame(connection, _final_losses_query(preset, charted, first, as_of), _LOSS_SCHEMA)
        reported = [*tickers["ticker"], *_failures(day_runs, tickers)]
        events = events_of(reported, connection=connection, since=first, through=as_of)
        failed_calendars = _calendars(preset, list(_failures(day_runs, tickers)), connection)
        delisted = probably_delisted(failed_calendars, connection=connection, after=delisted_after)
    shown = realised.filter(pl.col("ticker").is_in(forecasts["ticker"].implode()))
    pooled = {window: pooled_metrics(shown, window) for window in WINDOWS}
    return ReportData(as_of, preset, tickers, realised, day_runs, pooled, groups, losses, events, delisted)


def _calendars(preset: str, tickers: list[str], connection: sa.Connection) -> dict[str, str]:
    """{ticker: the calendar its series is on (New York for a ticker without one)}."""
    s = forecast_series.c
    stored = dict(
        connection.execute(sa.select(s.ticker, s.calendar).where(s.preset == preset, one_of(s.ticker, tickers))).all()
    )
    return {ticker: stored.get(ticker, NYSE) for ticker in tickers}


def chart_groups(tickers: pl.DataFrame, failed: list[str], per_end: int) -> list[ChartGroup]:
    """The tickers to chart, in groups: all when at most 2 x `per_end`, else the worst and best `per_end` by
    skill over RANK_WINDOW; then the `failed` ones."""
    table = tickers["ticker"].to_list()
    if len(table) <= 2 * per_end:
        groups = [ChartGroup("All tickers, worst skill first", table)]
    else:
        ranked = tickers.filter(pl.col(f"skill_ratio_{RANK_WINDOW}").is_not_null())["ticker"].to_list()
        groups = [
            ChartGroup(f"The {per_end} worst by skill over the last {RANK_WINDOW}", ranked[:per_end]),
            ChartGroup(f"The {per_end} best by skill over the last {RANK_WINDOW}", ranked[per_end:][::-1][:per_end]),
        ]
    groups.append(ChartGroup("Failed in this session (their history)", failed))
    return [group for group in groups if group.tickers]


def _failures(day_runs: list[Run], tickers: pl.DataFrame) -> dict[str, RunFailure]:
    """The tickers that failed in a run of the session and have no forecast from it."""
    forecast = set(tickers["ticker"])
    return {f.ticker: f for run in day_runs for f in run.failures if f.ticker not in forecast}


def _frame(connection: sa.Connection, query: sa.Select, schema: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(connection.execute(query).all(), schema=schema, orient="row")


def _forecasts_query(preset: str, as_of: date) -> sa.Select:
    """The forecasts made after the close of each market's latest session on or before `as_of` (on
    a day one market was closed, its tickers show the forecasts of its session before)."""
    p, s = predictions.c, forecast_series.c
    market = sa.func.coalesce(s.calendar, NYSE)
    series = sa.and_(s.preset == p.preset, s.ticker == p.ticker)
    latest = (
        sa.select(market.label("calendar"), sa.func.max(p.as_of).label("as_of"))
        .select_from(predictions.outerjoin(forecast_series, series))
        .where(p.preset == preset, p.as_of <= as_of)
        .group_by(market)
        .subquery()
    )
    return (
        sa.select(
            p.ticker,
            market.label("calendar"),
            p.as_of,
            p.target_session,
            p.last_close,
            p.predicted_close,
            *(p[bound] for bound in _BOUNDS),
        )
        .select_from(predictions.outerjoin(forecast_series, series))
        .join(latest, sa.and_(market == latest.c.calendar, p.as_of == latest.c.as_of))
        .where(p.preset == preset)
        .order_by(p.ticker)
    )


def _realised_query(preset: str, as_of: date, per_ticker: int) -> sa.Select:
    """The last `per_ticker` realised forecasts of each ticker known after the close of `as_of`.

    Only the last 2 x `per_ticker` target sessions of any forecast are searched, so the
    cost does not grow with years of history (a ticker missing from more than half of
    them shows fewer).
    """
    p, v = predictions.c, prediction_accuracy.c
    recent = (
        sa.select(p.target_session)
        .where(p.preset == preset, p.target_session <= as_of)
        .distinct()
        .order_by(p.target_session.desc())
        .limit(2 * per_ticker)
        .subquery()
    )
    newest_first = sa.func.row_number().over(partition_by=v.ticker, order_by=v.target_session.desc())
    columns = ("ticker", "target_session", "predicted_close", "actual_close", "last_close", *_BOUNDS)
    ranked = (
        sa.select(*(v[name] for name in columns), newest_first.label("rank"))
        .where(
            v.preset == preset,
            v.target_session <= as_of,
            v.target_session >= sa.select(sa.func.min(recent.c.target_session)).scalar_subquery(),
            v.actual_close.is_not(None),
        )
        .subquery()
    )
    return (
        sa.select(*(ranked.c[name] for name in columns))
        .where(ranked.c.rank <= per_ticker)
        .order_by(ranked.c.ticker, ranked.c.target_session)
    )


def _final_losses_query(preset: str, tickers: list[str], first: date, last: date) -> sa.Select:
    """The last epoch's loss of every fit of `preset` for `tickers` trained through a session in
    [first, last] (kept on the forecast the fit made, so it outlives the pruned loss curves)."""
    p = predictions.c
    return (
        sa.select(p.ticker, p.as_of.label("trained_through"), p.fit_last_loss.label("loss"))
        .where(
            one_of(p.ticker, tickers), p.preset == preset, p.as_of.between(first, last), p.fit_last_loss.is_not(None)
        )
        .order_by(p.ticker, p.as_of)
    )


def _runs_query(preset: str, as_of: date) -> sa.Select:
    """Runs of the session for this preset, and those recorded without a preset (fetch-only runs)."""
    return (
        sa.select(runs)
        .where(runs.c.as_of == as_of, sa.or_(runs.c.preset == preset, runs.c.preset.is_(None)))
        .order_by(runs.c.started_at, runs.c.id)
    )


def _ticker_table(forecasts: pl.DataFrame, realised: pl.DataFrame, latest_losses: pl.DataFrame) -> pl.DataFrame:
    change = pl.col("predicted_close") - pl.col("last_close")
    table = forecasts.with_columns(
        change.alias("predicted_change"), (100.0 * change / pl.col("last_close")).alias("predicted_change_pct")
    ).join(latest_losses.select("ticker", pl.col("loss").alias("training_loss")), on="ticker", how="left")
    for window in WINDOWS:
        table = table.join(window_metrics(realised, window), on="ticker", how="left").with_columns(
            pl.col(f"n_{window}").fill_null(0).cast(pl.Int64), pl.col(f"n_interval_{window}").fill_null(0)
        )
    return table.sort(f"skill_ratio_{RANK_WINDOW}", "ticker", descending=[True, False], nulls_last=True)
