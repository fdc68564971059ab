"""Forecast series: which (preset, ticker) pairs are forecast, from which session on, and what is missing.

A ticker's series starts at `first_as_of`, recorded once when the ticker first joins the
watch list (before any work on it), and owes a forecast from every session of its calendar
(forecaster.markets) from then on. What a catch-up owes is therefore a function of the watch list's history and the
calendar, never of where an interrupted run stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from forecaster.calendar import NYSE
from forecaster.store.bulk import insert_missing
from forecaster.store.hints import not_indexed
from forecaster.store.membership import one_of
from forecaster.store.schema import forecast_series, predictions, run_failures, runs

#: Failure stages that say the ticker's history or model for that session is at fault: a session
#: that failed this often at them is given up. A fetch that failed, prices that could not be
#: stored yet and a close not published yet ('fetch', 'prices') never count: a later fetch may
#: bring them, so nothing is given up before it could exist.
GIVE_UP_STAGES = ("validate", "train", "write")


@dataclass(frozen=True)
class SeriesProgress:
    """A series' forecasts made after sessions from `first_as_of` through the horizon asked about."""

    ticker: str
    first_as_of: date
    forecasts: int  # how many of those sessions have a forecast
    last_as_of: date | None  # the latest of them


def enroll(
    preset: str,
    tickers: Sequence[str],
    first_as_of: date,
    *,
    connection: sa.Connection,
    now: datetime,
    calendar: str = NYSE,
) -> None:
    """Starts a series at `first_as_of` on `calendar` for each ticker that has none yet; existing
    series keep theirs."""
    if not tickers:
        return
    connection.execute(
        insert_missing(connection, forecast_series),
        [
            {"preset": preset, "ticker": t, "first_as_of": first_as_of, "created_at": now, "calendar": calendar}
            for t in tickers
        ],
    )


def moved_calendars(preset: str, calendars: Mapping[str, str], *, connection: sa.Connection) -> dict[str, str]:
    """Records each series' calendar as `calendars` gives it ({ticker: name}: the watch list's
    resolution, its overrides included) and returns {ticker: the calendar it had} for those that
    moved (a changed override, or a series from before calendars)."""
    if not calendars:
        return {}
    s = forecast_series.c
    stored = connection.execute(
        sa.select(s.ticker, s.calendar).where(s.preset == preset, one_of(s.ticker, calendars))
    ).all()
    moved = {ticker: old for ticker, old in stored if old != calendars[ticker]}
    if moved:
        connection.execute(
            forecast_series.update()
            .where(s.preset == preset, s.ticker == sa.bindparam("key_ticker"))
            .values(calendar=sa.bindparam("new_calendar")),
            [{"key_ticker": t, "new_calendar": calendars[t]} for t in moved],
        )
    return moved


def unenrolled(preset: str, tickers: Sequence[str], *, connection: sa.Connection) -> list[str]:
    """The tickers without a series of `preset`, in the order given."""
    if not tickers:
        return []
    known = set(
        connection.execute(
            sa.select(forecast_series.c.ticker).where(
                forecast_series.c.preset == preset, one_of(forecast_series.c.ticker, tickers)
            )
        ).scalars()
    )
    return [t for t in tickers if t not in known]


def progress(preset: str, tickers: Sequence[str], through: date, *, connection: sa.Connection) -> list[SeriesProgress]:
    """For each ticker with a series: its forecasts made after sessions first_as_of .. `through`."""
    if not tickers:
        return []
    p, s = predictions.c, forecast_series.c
    # By the primary key (ticker, preset, ...), whatever SQLite's statistics say (store.hints).
    made = sa.and_(
        p.ticker == s.ticker,
        p.preset == s.preset,
        not_indexed(p.as_of) >= s.first_as_of,
        not_indexed(p.as_of) <= through,
    )
    statement = (
        sa.select(s.ticker, s.first_as_of, sa.func.count(p.as_of), sa.func.max(p.as_of))
        .select_from(forecast_series.outerjoin(predictions, made))
        .where(s.preset == preset, one_of(s.ticker, tickers))
        .group_by(s.ticker, s.first_as_of)
    )
    return [SeriesProgress(*row) for row in connection.execute(statement)]


def forecast_sessions(
    preset: str, tickers: Sequence[str], start: date, end: date, *, connection: sa.Connection
) -> dict[str, set[date]]:
    """{ticker: the sessions from `start` to `end` it has a forecast from}."""
    if not tickers:
        return {}
    found: dict[str, set[date]] = {t: set() for t in tickers}
    statement = sa.select(predictions.c.ticker, predictions.c.as_of).where(
        predictions.c.preset == preset, one_of(predictions.c.ticker, tickers), predictions.c.as_of.between(start, end)
    )
    for ticker, as_of in connection.execute(statement):
        found[ticker].add(as_of)
    return found


def given_up(preset: str, tickers: Sequence[str], *, connection: sa.Connection, attempts: int) -> set[tuple[str, date]]:
    """(ticker, session) pairs whose cycle failed `attempts` times or more at a GIVE_UP_STAGES stage."""
    if not tickers:
        return set()
    statement = (
        sa.select(run_failures.c.ticker, runs.c.as_of)
        .join(runs, runs.c.id == run_failures.c.run_id)
        .where(
            runs.c.preset == preset, one_of(run_failures.c.ticker, tickers), run_failures.c.stage.in_(GIVE_UP_STAGES)
        )
        .group_by(run_failures.c.ticker, runs.c.as_of)
        .having(sa.func.count() >= attempts)
    )
    return {(ticker, as_of) for ticker, as_of in connection.execute(statement)}
