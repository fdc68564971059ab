"""What a day's report shows, read from the tables in one pass: forecasts, realised errors, losses, runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import cast

import polars as pl
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
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
#: How many tickers each chart group (chart_groups) gets by default.
DEFAULT_PER_END = 5
#: At most this many tickers are charted, besides the named ones: each chart adds about 70 KB to the HTML.
MAX_CHARTS = 30
#: The flag columns of `ReportData.tickers`, per window (metrics.window_metrics); any true one flags a ticker.
FLAG_COLUMNS = tuple(f"{flag}_{w}" for flag in ("worse_than_naive", "coverage_off") for w in WINDOWS)
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
    """Tickers charted for one reason; a ticker of an earlier group too is charted there only."""

    title: str
    tickers: list[str]


@dataclass(frozen=True)
class PreviousSession:
    """The forecast session before the report's: what the briefing compares with."""

    as_of: date
    #: The tickers forecast after its close (each market's latest session on or before it).
    tickers: frozenset[str]
    #: The tickers that failed in its runs and have no forecast from it: ticker -> its latest failure.
    failures: dict[str, RunFailure]


@dataclass(frozen=True)
class Overdue:
    """A market whose latest session on or before the report's has closed with no forecast from it."""

    calendar: str
    latest_forecast: date
    session: date


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
    #: The forecast session before as_of, None when as_of is the first.
    previous: PreviousSession | None
    #: The markets behind: their latest closed session on or before as_of has no forecast.
    overdue: list[Overdue]

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
    named: Sequence[str] = (),
) -> ReportData:
    """Everything the report of `as_of` shows (the latest forecast session when None), with `charts`
    per chart group and the `named` tickers charted always (chart_groups); a failed ticker without data
    for `delisted_after` sessions is called probably delisted.

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
        failed = [t for t in _failures(day_runs, tickers) if t in with_history]
        groups = chart_groups(tickers, failed, charts, named)
        charted = [ticker for group in groups for ticker in group.tickers]
        first = cast(date | None, realised["target_session"].min()) or as_of
        losses = _frame(connection, _final_losses_query(preset, charted, first, as_of), _LOSS_SCHEMA)
        reported = [*tickers["ticker"], *_failures(day_runs, tickers)]
        events = events_of(reported, connection=connection, since=first, through=as_of)
        failed_calendars = _calendars(preset, list(_failures(day_runs, tickers)), connection)
        delisted = probably_delisted(failed_calendars, connection=connection, after=delisted_after)
        previous = _previous_session(preset, as_of, connection)
    shown = realised.filter(pl.col("ticker").is_in(forecasts["ticker"].implode()))
    pooled = {window: pooled_metrics(shown, window) for window in WINDOWS}
    overdue = _overdue(forecasts, as_of, datetime.now(UTC))
    return ReportData(
        as_of, preset, tickers, realised, day_runs, pooled, groups, losses, events, delisted, previous, overdue
    )


def _previous_session(preset: str, as_of: date, connection: sa.Connection) -> PreviousSession | None:
    p = predictions.c
    previous = connection.execute(
        sa.select(sa.func.max(p.as_of)).where(p.preset == preset, p.as_of < as_of)
    ).scalar_one()
    if previous is None:
        return None
    tickers = frozenset(connection.execute(_forecasts_query(preset, previous).with_only_columns(p.ticker)).scalars())
    runs_then = [
        Run(record, run_failures_of(record.id, connection=connection))
        for record in (RunRecord(**row._mapping) for row in connection.execute(_runs_query(preset, previous)))
    ]
    failures = {f.ticker: f for run in runs_then for f in run.failures if f.ticker not in tickers}
    return PreviousSession(previous, tickers, failures)


def _overdue(forecasts: pl.DataFrame, as_of: date, now: datetime) -> list[Overdue]:
    """Each market of `forecasts` whose latest session on or before `as_of` closed before `now` and is
    later than the session its shown forecasts were made after."""
    behind = []
    for calendar, made in forecasts.group_by("calendar").agg(pl.col("as_of").max()).sort("calendar").iter_rows():
        sessions = trading_calendar(calendar)
        due = sessions.session_on_or_before(as_of)
        if due is not None and due > made and sessions.session_close(due) <= now:
            behind.append(Overdue(calendar, made, due))
    return behind


def _calendars(preset: str, tickers: list[str], connection: sa.Connection) -> dict[str, str]:
    """{ticker: the calendar its series is on (New York for a ticker without one)}."""
    s = forecast_series.c
    stored = dict(
        connection.execute(sa.select(s.ticker, s.calendar).where(s.preset == preset, one_of(s.ticker, tickers))).all()
    )
    return {ticker: stored.get(ticker, NYSE) for ticker in tickers}


#: The title of the group chart_groups gives the tickers named to be charted always.
NAMED_GROUP = "Named to be charted always"


def chart_groups(
    tickers: pl.DataFrame, failed: list[str], per_group: int, named: Sequence[str] = ()
) -> list[ChartGroup]:
    """The tickers to chart, in groups: the `named` ones the report has (all of them); then at most
    `per_group` each of the `failed` ones (with a history), the flagged ones (worst skill first), the
    biggest predicted moves, and the worst and best by skill over RANK_WINDOW; in a report of at most
    2 x `per_group` tickers, all of them, worst skill first, then the failed ones. At most MAX_CHARTS
    tickers besides the named are charted: once there are that many, later groups get only tickers
    charted already."""
    table = tickers["ticker"].to_list()
    reported = set(table) | set(failed)
    shown = [ChartGroup(NAMED_GROUP, list(dict.fromkeys(t for t in named if t in reported)))]
    failures = _Candidates(
        lambda n: "Failed in this session (their history)" + (f": {n} of {len(failed)}" if n < len(failed) else ""),
        failed,
        per_group,
    )
    if len(table) <= 2 * per_group:
        return _fill(shown, [_Candidates(lambda n: "All tickers, worst skill first", table, len(table)), failures])
    flagged = tickers.filter(pl.any_horizontal(pl.col(FLAG_COLUMNS).fill_null(False)))["ticker"].to_list()
    moves = (
        tickers.filter(pl.col("predicted_change_pct").is_not_null())
        .sort(pl.col("predicted_change_pct").abs(), descending=True, maintain_order=True)["ticker"]
        .to_list()
    )
    ranked = tickers.filter(pl.col(f"skill_ratio_{RANK_WINDOW}").is_not_null())["ticker"].to_list()
    candidates = [
        failures,
        _Candidates(lambda n: f"Flagged, worst skill first: {n} of {len(flagged)}", flagged, per_group),
        _Candidates(lambda n: f"The {n} biggest predicted moves, up or down", moves, per_group),
        _Candidates(lambda n: f"The {n} worst by skill over the last {RANK_WINDOW}", ranked, per_group),
        _Candidates(lambda n: f"The {n} best by skill over the last {RANK_WINDOW}", ranked[::-1], per_group),
    ]
    return _fill(shown, candidates)


@dataclass(frozen=True)
class _Candidates:
    """A chart group to be: its title for the number charted, its tickers in order of preference, and
    how many of them it takes."""

    title: Callable[[int], str]
    tickers: list[str]
    count: int


def _fill(groups: list[ChartGroup], candidates: list[_Candidates]) -> list[ChartGroup]:
    """`groups`, then the first `count` tickers of each candidate, as long as MAX_CHARTS allows tickers not
    charted yet; empty groups left out."""
    charted = {ticker for group in groups for ticker in group.tickers}
    room = MAX_CHARTS
    for candidate in candidates:
        tickers = []
        for ticker in candidate.tickers[: candidate.count]:
            if ticker not in charted:
                if room == 0:
                    continue
                room -= 1
                charted.add(ticker)
            tickers.append(ticker)
        groups.append(ChartGroup(candidate.title(len(tickers)), tickers))
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
