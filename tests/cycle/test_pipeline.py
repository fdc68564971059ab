"""The daily cycle: prices in, forecasts out, idempotent, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.context import CycleContext
from forecaster.cycle import run_cycle
from forecaster.errors import CycleInterrupted
from forecaster.model.presets import PRESETS
from forecaster.prices import ingest
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.store import schema
from forecaster.store.database import make_engine, upgrade
from forecaster.store.training_losses import stored_epochs
from forecaster.walks import backfill, catch_up
from tests.support.fakes import FaultySource
from tests.support.tables import count_rows, snapshot

NYSE_CALENDAR = trading_calendar(NYSE)

TICKERS = ("AAA", "BBB", "CCC")
MONDAY = date(2024, 3, 4)


@pytest.fixture
def engine(migrated_engine) -> sa.Engine:
    return migrated_engine


def _context(engine, tickers=TICKERS, source=None, **kwargs) -> CycleContext:
    return CycleContext(
        engine=engine, source=source or SyntheticSource(seed=1), tickers=tickers, preset=PRESETS["default"], **kwargs
    )


def test_a_cycle_forecasts_the_next_session_for_every_ticker(engine):
    outcome = run_cycle(_context(engine), MONDAY)

    assert (outcome.status, outcome.tickers_ok, outcome.target_session) == ("ok", 3, date(2024, 3, 5))
    with engine.connect() as connection:
        rows = connection.execute(sa.select(schema.predictions).order_by(schema.predictions.c.ticker)).all()
    assert [r.ticker for r in rows] == list(TICKERS)
    assert all(r.as_of == MONDAY and r.target_session == date(2024, 3, 5) for r in rows)
    assert all(0.8 * r.last_close < r.predicted_close < 1.2 * r.last_close for r in rows)
    assert count_rows(engine, "model_states") == 3
    assert count_rows(engine, "training_losses") == 3 * len(stored_epochs(PRESETS["default"].epochs_first_fit))


def test_running_the_same_day_twice_leaves_exactly_the_same_rows(engine):
    context = _context(engine)
    run_cycle(context, MONDAY)
    first = snapshot(engine)

    again = run_cycle(context, MONDAY)

    assert snapshot(engine) == first
    assert (again.status, again.tickers_ok, again.tickers_skipped) == ("ok", 0, 3)


def test_a_backfill_run_twice_leaves_exactly_the_same_rows(engine):
    context = _context(engine)
    backfill(context, date(2024, 3, 1), date(2024, 3, 8))
    first = snapshot(engine)

    backfill(context, date(2024, 3, 1), date(2024, 3, 8))

    assert snapshot(engine) == first
    assert count_rows(engine, "predictions") == 3 * 6  # 6 sessions: Mar 1, 4, 5, 6, 7, 8


def test_each_day_warm_starts_from_the_previous_days_model(engine):
    preset = PRESETS["default"]
    backfill(_context(engine), date(2024, 3, 4), date(2024, 3, 5))

    with engine.connect() as connection:
        states = connection.execute(
            sa.select(schema.model_states)
            .where(schema.model_states.c.ticker == "AAA")
            .order_by(schema.model_states.c.trained_through)
        ).all()
    losses = count_rows(engine, "training_losses", "ticker = 'AAA'")
    first_steps = states[0].optimizer_state["step"]
    steps_per_epoch = -(-preset.window // preset.batch_size)
    assert states[1].optimizer_state["step"] == first_steps + preset.epochs_per_session * steps_per_epoch
    assert losses == len(stored_epochs(preset.epochs_first_fit)) + preset.epochs_per_session


def test_a_cycle_after_three_missed_sessions_processes_all_three_in_order(engine):
    context = _context(engine)
    run_cycle(context, date(2024, 3, 4))

    outcomes = catch_up(context, date(2024, 3, 7))

    assert [o.as_of for o in outcomes] == [date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7)]
    with engine.connect() as connection:
        runs = connection.execute(sa.select(schema.runs).order_by(schema.runs.c.id)).all()
    assert [(r.as_of, r.status) for r in runs] == [
        (date(2024, 3, 4), "ok"),
        (date(2024, 3, 5), "ok"),
        (date(2024, 3, 6), "ok"),
        (date(2024, 3, 7), "ok"),
    ]


def test_one_failing_ticker_is_recorded_and_the_others_go_on(engine, caplog):
    caplog.set_level("INFO", logger="forecaster")
    outcome = run_cycle(_context(engine, source=FaultySource(seed=1, failing=["BBB"])), MONDAY)

    assert (outcome.status, outcome.tickers_ok, outcome.tickers_failed) == ("partial", 2, 1)
    claims = [r.getMessage() for r in caplog.records if ": claim of " in r.getMessage()]
    assert [c.split(": ", 1)[1] for c in claims] == [
        "claim of 2 ticker(s) of the cycle after 2024-03-04 done: 2 forecast, 0 failed"
    ]
    with engine.connect() as connection:
        failure = connection.execute(sa.text("SELECT ticker, stage, reason FROM run_failures")).one()
        predicted = connection.execute(sa.text("SELECT ticker FROM predictions ORDER BY ticker")).scalars().all()
    assert (failure.ticker, failure.stage) == ("BBB", "fetch")
    assert "delisted" in failure.reason
    assert predicted == ["AAA", "CCC"]
    assert count_rows(engine, "model_states", "ticker = 'BBB'") == 0


def test_a_watch_list_longer_than_a_fetch_batch_is_fetched_a_batch_at_a_time_and_forecast_whole(engine, monkeypatch):
    monkeypatch.setattr(ingest, "FETCH_BATCH_TICKERS", 2)
    source = FaultySource(seed=1, failing=["AAA"])

    outcome = run_cycle(_context(engine, source=source), MONDAY)

    assert [call.tickers for call in source.calls] == [("AAA", "BBB"), ("CCC",)]
    assert (outcome.status, outcome.tickers_ok, outcome.tickers_failed) == ("partial", 2, 1)
    with engine.connect() as connection:
        predicted = connection.execute(sa.text("SELECT ticker FROM predictions ORDER BY ticker")).scalars().all()
    assert predicted == ["BBB", "CCC"]


def test_a_failed_ticker_is_retried_by_the_next_cycle(engine):
    run_cycle(_context(engine, source=FaultySource(seed=1, failing=["BBB"])), MONDAY)

    outcome = run_cycle(_context(engine), MONDAY)

    assert (outcome.tickers_ok, outcome.tickers_skipped) == (1, 2)
    assert count_rows(engine, "predictions") == 3


def test_a_tickers_forecast_does_not_depend_on_the_other_tickers(engine, tmp_path):
    run_cycle(_context(engine, tickers=("CCC", "AAA", "BBB")), MONDAY)
    alone = make_engine(f"sqlite:///{tmp_path / 'alone.db'}")
    upgrade(alone)
    run_cycle(_context(alone, tickers=("BBB",)), MONDAY)

    query = "SELECT predicted_close FROM predictions WHERE ticker = 'BBB'"
    with engine.connect() as together_db, alone.connect() as alone_db:
        assert together_db.execute(sa.text(query)).scalar_one() == alone_db.execute(sa.text(query)).scalar_one()


def test_a_stop_request_ends_the_cycle_as_interrupted_with_nothing_half_written(engine):
    stop = threading.Event()
    stop.set()
    context = _context(engine, stop_event=stop)

    with pytest.raises(CycleInterrupted):
        run_cycle(context, MONDAY)

    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT status FROM runs")).scalar_one() == "interrupted"
    assert count_rows(engine, "predictions") == count_rows(engine, "model_states") == 0


def test_a_session_is_forecast_for_the_next_trading_session_across_a_holiday(engine):
    outcome = run_cycle(_context(engine), date(2024, 7, 3))

    assert outcome.target_session == date(2024, 7, 5) == NYSE_CALENDAR.next_session(date(2024, 7, 3))


def test_every_forecast_carries_nested_intervals_from_the_fallback_then_from_its_own_errors(engine):
    backfill(_context(engine, tickers=("AAA", "BBB")), date(2024, 1, 2), date(2024, 2, 9))  # 28 sessions

    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT as_of, lower_95, lower_80, predicted_close, upper_80, upper_95, interval_method, covered_80, covered_95 "
                "FROM prediction_accuracy WHERE ticker = 'AAA' ORDER BY as_of"
            )
        ).all()
    assert all(r.lower_95 <= r.lower_80 <= r.predicted_close <= r.upper_80 <= r.upper_95 for r in rows)
    methods = [r.interval_method for r in rows]
    # Forecast k has the scores of the k - 1 before it; with 20 of them the interval is its own.
    assert methods == ["returns_window"] * 20 + ["conformal"] * 8
    assert all(r.covered_80 in (0, 1) and r.covered_95 in (0, 1) for r in rows[:-1])
    assert rows[-1].covered_80 is None  # its target close is not stored yet
