"""Run records: started, finished with counts read from what they wrote, their failed tickers, and the latest one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from forecaster.store import tasks
from forecaster.store.predictions import ForecastRow, save_forecasts
from forecaster.store.runs import (
    RunFailure,
    RunRecord,
    close_abandoned_runs,
    finish_run,
    latest_run,
    record_failures,
    run_failures_of,
    start_run,
)
from forecaster.store.schema import cycle_tasks

NINE_PM = datetime(2024, 3, 5, 21, 0, tzinfo=UTC)
TUESDAY, WEDNESDAY = date(2024, 3, 5), date(2024, 3, 6)


def _start(connection: sa.Connection, as_of: date = TUESDAY, at: datetime = NINE_PM) -> int:
    return start_run("daily", connection=connection, as_of=as_of, preset="default", host="box", started_at=at)


def _forecast(connection: sa.Connection, ticker: str, run_id: int) -> None:
    save_forecasts(
        [ForecastRow(ticker, "default", TUESDAY, WEDNESDAY, 101.0, 100.0, None, run_id, NINE_PM)],
        connection=connection,
    )


def test_a_run_is_recorded_as_running_then_finished_with_the_counts_of_what_it_wrote(migrated_engine):
    with migrated_engine.begin() as connection:
        run_id = _start(connection)
        running = latest_run(connection=connection)
        _forecast(connection, "SPY", run_id)
        _forecast(connection, "QQQ", run_id)
        record_failures(run_id, {"IWM": ("fetch", "timed out")}, connection=connection)
        finished = finish_run(
            run_id,
            connection=connection,
            status="ok",
            tickers_skipped=3,
            tickers_waiting=1,
            error=None,
            finished_at=NINE_PM + timedelta(minutes=2),
        )
    assert running == RunRecord(
        run_id, "daily", TUESDAY, "default", NINE_PM, None, "running", 0, 0, 0, None, "box", "XNYS", 0
    )
    assert finished == RunRecord(
        run_id,
        "daily",
        TUESDAY,
        "default",
        NINE_PM,
        NINE_PM + timedelta(minutes=2),
        "partial",
        2,
        1,
        3,
        None,
        "box",
        "XNYS",
        1,
    )


@pytest.mark.parametrize(
    ("forecasts", "failures", "status"), [(0, 0, "ok"), (1, 0, "ok"), (1, 1, "partial"), (0, 1, "failed")]
)
def test_a_run_that_ended_well_is_ok_partial_or_failed_by_what_it_left(migrated_engine, forecasts, failures, status):
    with migrated_engine.begin() as connection:
        run_id = _start(connection)
        for k in range(forecasts):
            _forecast(connection, f"T{k}", run_id)
        record_failures(run_id, {f"F{k}": ("train", "diverged") for k in range(failures)}, connection=connection)
        record = finish_run(
            run_id, connection=connection, status="ok", tickers_skipped=0, error=None, finished_at=NINE_PM
        )
    assert record.status == status


def test_a_run_ends_once_and_takes_its_tasks_with_it(migrated_engine):
    with migrated_engine.begin() as connection:
        run_id = _start(connection)
        other = _start(connection, as_of=WEDNESDAY)
        tasks.enqueue("default", TUESDAY, run_id, ["SPY", "QQQ"], connection=connection)
        tasks.enqueue("default", WEDNESDAY, other, ["SPY"], connection=connection)
        first = finish_run(
            run_id,
            connection=connection,
            status="interrupted",
            tickers_skipped=0,
            error="stop requested",
            finished_at=NINE_PM,
        )
        second = finish_run(
            run_id, connection=connection, status="ok", tickers_skipped=0, error=None, finished_at=NINE_PM
        )
        left = connection.execute(sa.select(cycle_tasks.c.run_id)).scalars().all()
    assert (first.status, first.error, second) == ("interrupted", "stop requested", None)
    assert left == [other]


def test_runs_left_running_are_closed_as_interrupted_with_their_counts(migrated_engine):
    with migrated_engine.begin() as connection:
        done = _start(connection)
        finish_run(done, connection=connection, status="ok", tickers_skipped=0, error=None, finished_at=NINE_PM)
        abandoned = _start(connection, as_of=WEDNESDAY)
        _forecast(connection, "SPY", abandoned)
        closed = close_abandoned_runs(connection=connection, now=NINE_PM + timedelta(hours=1))
        statuses = dict(connection.execute(sa.text("SELECT id, status FROM runs")).all())
    assert [(r.id, r.status, r.tickers_ok) for r in closed] == [(abandoned, "interrupted", 1)]
    assert "its process stopped before the end" in closed[0].error
    assert statuses == {done: "ok", abandoned: "interrupted"}


def test_the_latest_run_is_the_last_started(migrated_engine):
    with migrated_engine.begin() as connection:
        assert latest_run(connection=connection) is None
        ids = [_start(connection, at=NINE_PM + timedelta(hours=k)) for k in range(3)]
        assert latest_run(connection=connection).id == ids[2]


def test_an_unknown_run_cannot_be_finished_or_given_failures(migrated_engine):
    with migrated_engine.connect() as connection:
        with pytest.raises(LookupError, match="no run with id 42"):
            finish_run(42, connection=connection, status="ok", tickers_skipped=0, error=None, finished_at=NINE_PM)
        with pytest.raises(sa.exc.IntegrityError):
            record_failures(42, {"SPY": ("fetch", "timed out")}, connection=connection)


def test_unknown_kinds_statuses_and_stages_are_refused_by_the_database(migrated_engine):
    with migrated_engine.connect() as connection:
        with pytest.raises(sa.exc.IntegrityError):
            start_run("weekly", connection=connection, as_of=None, preset=None, host=None, started_at=NINE_PM)
        connection.rollback()
        run_id = _start(connection)
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            connection.execute(sa.text("UPDATE runs SET status = 'done' WHERE id = :id"), {"id": run_id})
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            record_failures(run_id, {"SPY": ("predict", "no")}, connection=connection)


def test_failures_are_recorded_per_ticker_and_read_back_per_run(migrated_engine):
    with migrated_engine.begin() as connection:
        first = _start(connection)
        second = _start(connection)
        record_failures(
            first,
            {"SPY": ("fetch", "timed out"), "AAA": ("validate", "no close for 2024-03-05")},
            connection=connection,
        )
        record_failures(second, {"SPY": ("fetch", "timed out")}, connection=connection)
        record_failures(second, {"SPY": ("write", "disk full")}, connection=connection)  # recorded again: replaced
        record_failures(second, {}, connection=connection)
        of_first = run_failures_of(first, connection=connection)
        of_second = run_failures_of(second, connection=connection)
    assert of_first == [
        RunFailure(first, "AAA", "validate", "no close for 2024-03-05"),
        RunFailure(first, "SPY", "fetch", "timed out"),
    ]
    assert of_second == [RunFailure(second, "SPY", "write", "disk full")]
