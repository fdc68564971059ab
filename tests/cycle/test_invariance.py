"""Forecasts are invariant to restatement: a daemon fed day by day by a source that restates its history
as Yahoo does agrees with a backfill run afterwards on the final history.

A year of four tickers as Yahoo shows them (tests/support/yahoo_replay.py): quarterly dividends
restating every earlier close on each ex-date, a 2:1 and a 1:10 split, a genuine +60 % move, a
session missing at the first fetch and filled two sessions later, a rate-limited day, and a fetch
in the middle of a session (a live bar) every week. The daemon's catch-up runs after every close
(and that midday fetch) with the clock set to it; a backfill of the same span then runs on a fresh
database once the history has settled. For every forecast of the default preset the two must
agree on the forecast's move (predicted / last close), its bounds relative to the last close, and
its realised errors in percent in `prediction_accuracy`, to 1e-9 relative. On SQLite and PostgreSQL.

The seed preset trains on raw closes, so a restatement does change its inputs: this is the
default preset's guarantee (README, "Failure behaviour").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from forecaster.context import CycleContext
from forecaster.model.presets import PRESETS
from forecaster.store.accuracy import load_predictions
from forecaster.store.database import make_engine, upgrade
from forecaster.walks import backfill, catch_up_now
from tests.support.yahoo_replay import ReplaySource, TickerLife, daemon_runs

SETTLE = timedelta(minutes=30)
START, END = date(2023, 1, 3), date(2024, 12, 31)  # the lives; the daemon forecasts through 2024
FIRST = date(2024, 1, 2)
LIVES = [
    TickerLife("DIVS", start=START, end=END, seed=1, dividends={date(2024, 2, 9): 0.6, date(2024, 5, 10): 0.6,
               date(2024, 8, 9): 0.65, date(2024, 11, 8): 0.65}),
    TickerLife("SPLT", start=START, end=END, seed=2, start_price=300.0, splits={date(2024, 4, 15): 2.0,
               date(2024, 10, 1): 0.1}, dividends={date(2024, 6, 14): 0.3}),
    TickerLife("JUMP", start=START, end=END, seed=3, jumps={date(2024, 7, 18): 0.6},
               missing={date(2024, 3, 12): 2}),
    TickerLife("CALM", start=START, end=END, seed=4, rate_limited=frozenset({date(2024, 9, 16)})),
]  # fmt: skip
TICKERS = tuple(life.ticker for life in LIVES)
PRESET = PRESETS["default"]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _context(engine: sa.Engine, source: ReplaySource, clock: Clock) -> CycleContext:
    return CycleContext(
        engine=engine,
        source=source,
        tickers=TICKERS,
        preset=PRESET,
        clock=clock,
        history_sessions=PRESET.window + PRESET.lags + 5,
        settle_minutes=int(SETTLE.total_seconds() // 60),
    )


def _daemon(url: str) -> None:
    """The catch-up after every close of 2024, and at midday every Wednesday (a live bar)."""
    engine = make_engine(url)
    upgrade(engine)
    runs = [run for run in daemon_runs(LIVES[0], SETTLE) if run.session >= FIRST]
    clock = Clock(runs[0].at)
    context = _context(engine, ReplaySource(LIVES, clock, settle=SETTLE), clock)
    for run in runs:
        if run.session.weekday() == 2:
            clock.now = run.at - timedelta(hours=4)  # during the session: its bar is still changing
            catch_up_now(context)
        clock.now = run.at
        catch_up_now(context)
    engine.dispose()


def _backfill(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    clock = Clock(datetime.combine(END + timedelta(days=10), datetime.min.time()).astimezone())
    backfill(_context(engine, ReplaySource(LIVES, clock, settle=SETTLE), clock), FIRST, END)
    engine.dispose()


def _forecasts(url: str) -> pl.DataFrame:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            frame = load_predictions(connection=connection, preset=PRESET.name)
    finally:
        engine.dispose()
    last = pl.col("last_close")
    return frame.select(
        "ticker",
        "as_of",
        "target_session",
        (pl.col("predicted_close") / last).alias("move"),
        *((pl.col(bound) / last).alias(bound) for bound in ("lower_80", "upper_80", "lower_95", "upper_95")),
        "pct_error",
        (100.0 * pl.col("naive_abs_error") / pl.col("actual_close")).alias("naive_pct_error"),
        "interval_method",
    ).sort("ticker", "as_of")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def both_paths(request, tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The forecasts of the daemon's year and of the later backfill, on a fresh database each."""
    if request.param == "sqlite":
        directory = tmp_path_factory.mktemp("invariance")
        daemon, later = (f"sqlite:///{directory / name}.db" for name in ("daemon", "backfill"))
    else:
        create = request.getfixturevalue("module_postgres_url")
        daemon, later = create(), create()
    _daemon(daemon)
    _backfill(later)
    return _forecasts(daemon), _forecasts(later)


def test_the_daemon_and_a_later_backfill_make_the_same_forecasts_of_every_session(both_paths):
    daemon, later = both_paths
    sessions = len([run for run in daemon_runs(LIVES[0]) if FIRST <= run.session <= END])
    assert daemon.select("ticker", "as_of").equals(later.select("ticker", "as_of"))
    assert daemon.height == len(TICKERS) * sessions, (
        "every session forecast, through the missing one and the rate limit"
    )


@pytest.mark.parametrize(
    "column", ["move", "lower_80", "upper_80", "lower_95", "upper_95", "pct_error", "naive_pct_error"]
)
def test_the_moves_bounds_and_realised_errors_agree_to_1e9_relative(both_paths, column):
    daemon, later = both_paths
    pair = pl.DataFrame({"daemon": daemon[column], "later": later[column]}).drop_nulls()
    worst = pair.select(((pl.col("daemon") / pl.col("later")) - 1).abs().max()).item()
    assert worst is None or worst <= 1e-9, f"{column}: worst relative difference {worst:.3g}"
