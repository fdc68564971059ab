"""What a catch-up owes: every session of every ticker's series that has no forecast, whatever stopped the last run.

A ticker's series starts once, when it first joins the watch list, and owes a forecast from
every NYSE session after that. The daemon's catch-up fills every gap in date order per
ticker, so a session cut short, a watch list that grew, or a ticker back from failing all
end with the rows an uninterrupted run would have written. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pytest
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.context import CycleContext
from forecaster.cycle import run_cycle
from forecaster.model.presets import PRESETS
from forecaster.store import schema
from forecaster.store.database import make_engine, upgrade
from forecaster.walks import backfill, catch_up, owed_sessions
from tests.support.fakes import FaultySource
from tests.support.tables import count_rows, product

NYSE_CALENDAR = trading_calendar(NYSE)

OLD, NEW = ("AAA", "BBB", "CCC"), ("DDD", "EEE")
MON, TUE, WED, THU, FRI = (date(2024, 3, d) for d in (4, 5, 6, 7, 8))


def _source(**faults) -> FaultySource:
    """The synthetic prices of every test here, with the faults named (tests/support/fakes.py)."""
    return FaultySource(seed=5, **faults)


def _context(engine: sa.Engine, tickers: Sequence[str], source: FaultySource | None = None, **kwargs) -> CycleContext:
    return CycleContext(engine=engine, source=source or _source(), tickers=tickers, preset=PRESETS["default"], **kwargs)


@pytest.fixture
def engine(migrated_engine) -> sa.Engine:
    return migrated_engine


@pytest.fixture
def reference(another_database_url) -> sa.Engine:
    engine = make_engine(another_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _forecast_sessions(engine: sa.Engine, ticker: str) -> list[date]:
    p = schema.predictions.c
    with engine.connect() as connection:
        return connection.execute(sa.select(p.as_of).where(p.ticker == ticker).order_by(p.as_of)).scalars().all()


def test_a_session_left_half_done_is_completed_before_the_next_one(engine, reference):
    run_cycle(_context(reference, OLD), MON)
    catch_up(_context(reference, OLD), WED)
    run_cycle(_context(engine, OLD), MON)
    run_cycle(_context(engine, OLD), TUE, tickers=["AAA"])  # what a crash mid-session leaves

    catch_up(_context(engine, OLD), WED)

    assert product(engine) == product(reference)
    assert all(_forecast_sessions(engine, t) == [MON, TUE, WED] for t in OLD)


def test_tickers_joining_the_watch_list_are_forecast_from_the_first_session_the_catch_up_walks(engine):
    backfill(_context(engine, OLD), MON, TUE)

    catch_up(_context(engine, OLD + NEW), THU)

    assert [_forecast_sessions(engine, t) for t in NEW] == [[WED, THU]] * 2
    assert [_forecast_sessions(engine, t) for t in OLD] == [[MON, TUE, WED, THU]] * 3


def test_on_an_empty_database_the_catch_up_forecasts_from_the_latest_session_only(engine):
    outcomes = catch_up(_context(engine, OLD), WED)

    assert [(o.as_of, o.tickers_ok) for o in outcomes] == [(WED, 3)]


def test_a_ticker_that_failed_is_forecast_for_the_sessions_it_missed_once_it_comes_back(engine, reference):
    catch_up(_context(reference, OLD + NEW), MON)
    catch_up(_context(reference, OLD + NEW), WED)
    catch_up(_context(engine, OLD + NEW), MON)
    catch_up(_context(engine, OLD + NEW, _source(failing=NEW)), TUE)  # NEW fail, the others go on

    outcomes = catch_up(_context(engine, OLD + NEW), WED)

    assert [(o.as_of, o.tickers_ok, o.tickers_skipped) for o in outcomes] == [(TUE, 2, 3), (WED, 5, 0)]
    assert product(engine) == product(reference)


def test_what_is_owed_is_read_from_the_series_and_the_forecasts_alone(engine):
    catch_up(_context(engine, OLD), MON)
    run_cycle(_context(engine, OLD), TUE, tickers=["AAA"])
    run_cycle(_context(engine, OLD), THU, tickers=["BBB"])  # a forecast after a gap (a failed day)

    owed = owed_sessions(_context(engine, OLD), FRI)

    assert owed == {"AAA": [WED, THU, FRI], "BBB": [TUE, WED, FRI], "CCC": [TUE, WED, THU, FRI]}


def test_a_close_not_there_yet_is_waited_for_never_failed_and_the_ticker_goes_on_once_it_arrives(engine):
    missing = FaultySource(seed=5, missing=[("BBB", TUE)])  # Tuesday's close is not published yet
    catch_up(_context(engine, OLD, missing), MON)
    for _ in range(3):
        catch_up(_context(engine, OLD, missing), WED)

    assert _forecast_sessions(engine, "BBB") == [MON], "BBB waits at Tuesday: its windows need that close"
    assert count_rows(engine, "run_failures", "ticker = 'BBB'") == 0, "a close not there yet is no failure"
    assert [_forecast_sessions(engine, t) for t in ("AAA", "CCC")] == [[MON, TUE, WED]] * 2

    catch_up(_context(engine, OLD), THU)  # published at last

    assert _forecast_sessions(engine, "BBB") == [MON, TUE, WED, THU]
    assert count_rows(engine, "price_events", "ticker = 'BBB' AND kind = 'late'") == 1


def test_a_close_that_never_comes_is_a_gap_after_the_wait_and_the_ticker_is_forecast_around_it(engine):
    source = _source(missing=[("BBB", TUE)])  # the source never has BBB's close on Tuesday
    catch_up(_context(engine, OLD, source), MON)
    catch_up(_context(engine, OLD, source), THU)
    assert _forecast_sessions(engine, "BBB") == [MON], "two sessions after Tuesday: still waiting"

    catch_up(_context(engine, OLD, source), FRI)  # three sessions after it: the wait (gap_wait_sessions) is over

    assert owed_sessions(_context(engine, OLD, source), FRI) == {}
    assert _forecast_sessions(engine, "BBB") == [MON, WED, THU, FRI]
    assert count_rows(engine, "price_events", "ticker = 'BBB' AND kind = 'gap'") == 1
    assert count_rows(engine, "run_failures", "ticker = 'BBB'") == 0


def test_a_fetch_failure_is_never_given_up(engine):
    catch_up(_context(engine, OLD), MON)
    for _ in range(3):
        catch_up(_context(engine, OLD, _source(failing=["CCC"])), TUE)

    assert owed_sessions(_context(engine, OLD), TUE) == {"CCC": [TUE]}


def test_a_backfill_of_a_period_before_the_stored_prices_fetches_the_earlier_history(engine):
    source = _source()
    backfill(_context(engine, OLD, source), date(2024, 6, 3), date(2024, 6, 7))

    outcomes = backfill(_context(engine, OLD, source), date(2024, 1, 2), date(2024, 1, 5))

    assert [(o.status, o.tickers_ok) for o in outcomes] == [("ok", 3)] * 4
    earliest_needed = NYSE_CALENDAR.sessions_back(date(2024, 1, 2), _context(engine, OLD).history_sessions)
    with engine.connect() as connection:
        first_close = connection.execute(sa.select(sa.func.min(schema.prices.c.session_date))).scalar_one()
    assert first_close == earliest_needed
    assert count_rows(engine, "prices", "ticker = 'AAA'") == NYSE_CALENDAR.count_sessions(
        earliest_needed, date(2024, 6, 7)
    )


def test_earlier_history_the_source_does_not_have_is_asked_for_once(engine):
    source = _source(listed_since=date(2024, 5, 1))  # a ticker listed in May has no earlier closes
    backfill(_context(engine, OLD, source), date(2024, 6, 3), date(2024, 6, 3))
    backfill(_context(engine, OLD, source), date(2024, 5, 20), date(2024, 5, 21))
    calls = len(source.calls)

    outcomes = backfill(_context(engine, OLD, source), date(2024, 5, 20), date(2024, 5, 21))

    assert len(source.calls) == calls, "no fetch: the source was already asked that far back"
    assert [o.tickers_skipped for o in outcomes] == [3, 3]
