"""A watch list of any length can be asked about: 70,000 tickers are over PostgreSQL's 65,535 parameters a statement."""

from __future__ import annotations

from datetime import date

from forecaster.store.series import enroll, progress, unenrolled
from tests.support.results import CREATED

TICKERS = [f"T{k:05d}" for k in range(70_000)]
DAY = date(2024, 3, 4)


def test_seventy_thousand_series_are_enrolled_and_read_back_in_one_statement_each(migrated_engine):
    with migrated_engine.begin() as connection:
        enroll("default", TICKERS, DAY, connection=connection, now=CREATED)
    with migrated_engine.connect() as connection:
        assert unenrolled("default", [*TICKERS, "NEW"], connection=connection) == ["NEW"]
        series = progress("default", TICKERS, DAY, connection=connection)
    assert len(series) == len(TICKERS)
    assert {s.forecasts for s in series} == {0} and {s.first_as_of for s in series} == {DAY}
