"""Run records: started, finished, their failed tickers, and the latest one found again."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from forecaster.store.runs import (
    RunFailure,
    RunRecord,
    finish_run,
    latest_run,
    record_failures,
    run_failures_of,
    start_run,
)

NINE_PM = datetime(2024, 3, 5, 21, 0, tzinfo=timezone.utc)


def test_a_run_is_recorded_as_running_then_as_it_finished(migrated_engine):
    with migrated_engine.begin() as connection:
        run_id = start_run("daily", connection=connection, as_of=date(2024, 3, 5), preset="default", host="box", started_at=NINE_PM)
        running = latest_run(connection=connection)
        finish_run(
            run_id, connection=connection, status="partial", tickers_ok=2, tickers_failed=1, tickers_skipped=3,
            error=None, finished_at=NINE_PM + timedelta(minutes=2),
        )
        finished = latest_run(connection=connection)
    assert running == RunRecord(run_id, "daily", date(2024, 3, 5), "default", NINE_PM, None, "running", 0, 0, 0, None, "box")
    assert finished == RunRecord(
        run_id, "daily", date(2024, 3, 5), "default", NINE_PM, NINE_PM + timedelta(minutes=2), "partial", 2, 1, 3, None, "box"
    )


def test_the_latest_run_is_the_last_started_optionally_of_given_kinds(migrated_engine):
    with migrated_engine.begin() as connection:
        assert latest_run(connection=connection) is None
        ids = [
            start_run(kind, connection=connection, as_of=None, preset=None, host=None, started_at=NINE_PM + timedelta(hours=k))
            for k, kind in enumerate(["daily", "backfill", "fit"])
        ]
        assert latest_run(connection=connection).id == ids[2]
        assert latest_run(connection=connection, kinds=["daily", "backfill"]).id == ids[1]
        assert latest_run(connection=connection, kinds=["daily"]).id == ids[0]


def test_an_unknown_run_cannot_be_finished_or_given_failures(migrated_engine):
    with migrated_engine.connect() as connection:
        with pytest.raises(LookupError, match="no run with id 42"):
            finish_run(42, connection=connection, status="ok", tickers_ok=0, tickers_failed=0, tickers_skipped=0, error=None, finished_at=NINE_PM)
        with pytest.raises(sa.exc.IntegrityError):
            record_failures(42, {"SPY": ("fetch", "timed out")}, connection=connection)


def test_unknown_kinds_statuses_and_stages_are_refused_by_the_database(migrated_engine):
    with migrated_engine.connect() as connection:
        with pytest.raises(sa.exc.IntegrityError):
            start_run("weekly", connection=connection, as_of=None, preset=None, host=None, started_at=NINE_PM)
        connection.rollback()
        run_id = start_run("daily", connection=connection, as_of=None, preset=None, host=None, started_at=NINE_PM)
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            finish_run(run_id, connection=connection, status="done", tickers_ok=0, tickers_failed=0, tickers_skipped=0, error=None, finished_at=NINE_PM)
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            record_failures(run_id, {"SPY": ("predict", "no")}, connection=connection)


def test_failures_are_recorded_per_ticker_and_read_back_per_run(migrated_engine):
    with migrated_engine.begin() as connection:
        first = start_run("daily", connection=connection, as_of=None, preset=None, host=None, started_at=NINE_PM)
        second = start_run("daily", connection=connection, as_of=None, preset=None, host=None, started_at=NINE_PM)
        record_failures(first, {"SPY": ("fetch", "timed out"), "AAA": ("validate", "no close for 2024-03-05")}, connection=connection)
        record_failures(second, {"SPY": ("fetch", "timed out")}, connection=connection)
        record_failures(second, {"SPY": ("write", "disk full")}, connection=connection)  # recorded again: replaced
        record_failures(second, {}, connection=connection)
        of_first = run_failures_of(first, connection=connection)
        of_second = run_failures_of(second, connection=connection)
    assert of_first == [RunFailure(first, "AAA", "validate", "no close for 2024-03-05"), RunFailure(first, "SPY", "fetch", "timed out")]
    assert of_second == [RunFailure(second, "SPY", "write", "disk full")]
