"""A catch-up's reading of each series' forecasts goes by the primary key, whatever SQLite's statistics say.

Without statistics, or with ANALYZE's sampled ones, SQLite answered the join of forecast_series
to predictions through (preset, as_of), reading every forecast of the preset for each series:
25-34 s a catch-up after a year of 1,000 tickers. The plan is read from SQLite itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from forecaster.store.database import make_engine, upgrade
from forecaster.store.runs import start_run
from forecaster.store.schema import predictions
from forecaster.store.series import enroll, progress
from tests.support.results import CREATED

TICKERS = [f"T{k:03d}" for k in range(200)]
DAYS = [date(2024, 1, 1) + timedelta(days=k) for k in range(60)]


def _with_forecasts(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as connection:
        run_id = start_run(
            "backfill", connection=connection, as_of=None, preset="default", host="t", started_at=CREATED
        )
        enroll("default", TICKERS, DAYS[0], connection=connection, now=CREATED)
        connection.execute(
            predictions.insert(),
            [
                {
                    "ticker": t,
                    "preset": "default",
                    "as_of": d,
                    "target_session": d + timedelta(days=1),
                    "predicted_close": 1.0,
                    "last_close": 1.0,
                    "run_id": run_id,
                    "created_at": CREATED,
                }
                for t in TICKERS
                for d in DAYS
            ],
        )
    return engine


@pytest.fixture
def forecasts(migrated_engine) -> sa.Engine:
    return _with_forecasts(migrated_engine)


@pytest.fixture
def sqlite_forecasts(sqlite_url) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield _with_forecasts(engine)
    engine.dispose()


def test_progress_counts_each_series_forecasts(forecasts):
    with forecasts.connect() as connection:
        series = progress("default", TICKERS, DAYS[29], connection=connection)
    assert {(s.forecasts, s.last_as_of) for s in series} == {(30, DAYS[29])}
    assert len(series) == len(TICKERS)


@pytest.mark.parametrize("statistics", ["none", "sampled", "full"])
def test_on_sqlite_progress_reads_each_series_forecasts_by_the_primary_key(sqlite_forecasts, statistics):
    forecasts = sqlite_forecasts
    with forecasts.begin() as connection:
        if statistics == "sampled":
            connection.exec_driver_sql("PRAGMA analysis_limit = 100")
        if statistics != "none":
            connection.exec_driver_sql("ANALYZE")
    statements: list[tuple[str, object]] = []
    sa.event.listen(
        forecasts, "before_cursor_execute", lambda c, cursor, sql, params, *rest: statements.append((sql, params))
    )
    with forecasts.connect() as connection:
        progress("default", TICKERS, DAYS[-1], connection=connection)
        sql, params = statements[-1]
        plan = [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]  # type: ignore[arg-type]
    assert any(
        "predictions USING INDEX sqlite_autoindex_predictions_1 (ticker=? AND preset=?)" in step for step in plan
    ), plan
