"""Real closes from four markets and two real crashes and jumps, forecast session by session on each ticker's own calendar.

The files are shared/data's (read its README), used by path through the CSV source:
global_daily_long.csv holds London (BP.L, in pence, with 2025-02-27 missing), Stockholm
(ABB.ST), Xetra (ADS.DE) and crypto (SOL-USD, every calendar day, -42.3 % on 2022-11-09);
sp500_stocks_2013_2018_long.csv holds AMD's +52 % of 2016-04-22. Each ticker owes one forecast
per session of its own calendar, aimed at that calendar's next session; a move that large is
confirmed on a second look, kept, flagged as a price event, and forecast through, in a
backfill and in a daily catch-up alike. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pytest
import sqlalchemy as sa

from forecaster.calendar import trading_calendar
from forecaster.context import CycleContext
from forecaster.model.presets import PRESETS
from forecaster.prices.sources.csv_file import CsvSource
from forecaster.walks import backfill, catch_up
from tests.support.paths import shared_file

EUROPE = ("BP.L", "ABB.ST", "ADS.DE")
CALENDARS = {"BP.L": "XLON", "ABB.ST": "XSTO", "ADS.DE": "XETR", "SOL-USD": "24/7", "AMD": "XNYS"}
BP_MISSING = date(2025, 2, 27)  # absent from the file: London traded, the source has no close
SOL_CRASH = date(2022, 11, 9)  # -42.3 %
AMD_JUMP = date(2016, 4, 22)  # +52 %


@pytest.fixture
def engine(migrated_engine) -> sa.Engine:
    return migrated_engine


def _context(engine: sa.Engine, tickers: Sequence[str], file: str) -> CycleContext:
    source = CsvSource(shared_file(f"data/{file}"))
    return CycleContext(engine=engine, source=source, tickers=tickers, preset=PRESETS["default"])


def _forecasts(engine: sa.Engine, ticker: str) -> list[tuple[date, date]]:
    """(as_of, target_session) of every forecast of `ticker`, in order."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT as_of, target_session FROM predictions WHERE ticker = :t ORDER BY as_of"), {"t": ticker}
        ).all()
    return [(_day(a), _day(t)) for a, t in rows]


def _events(engine: sa.Engine, ticker: str) -> list[tuple[date, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT session_date, kind FROM price_events WHERE ticker = :t ORDER BY session_date"),
            {"t": ticker},
        ).all()
    return [(_day(d), kind) for d, kind in rows]


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _every_session_to_its_next(
    ticker: str, start: date, end: date, skip: Sequence[date] = ()
) -> list[tuple[date, date]]:
    market = trading_calendar(CALENDARS[ticker])
    return [(d, market.next_session(d)) for d in market.sessions_between(start, end) if d not in skip]


def test_london_stockholm_and_xetra_are_each_forecast_on_their_own_sessions_and_a_missing_close_is_a_gap(engine):
    start, end = date(2025, 2, 17), date(2025, 4, 30)  # Easter 2025: Good Friday and Easter Monday closed

    backfill(_context(engine, EUROPE, "global_daily_long.csv"), start, end)

    for ticker in EUROPE:
        skip = [BP_MISSING] if ticker == "BP.L" else []
        assert _forecasts(engine, ticker) == _every_session_to_its_next(ticker, start, end, skip), ticker
    assert (date(2025, 4, 17), date(2025, 4, 22)) in _forecasts(engine, "ADS.DE"), "Thursday to Tuesday over Easter"
    assert _events(engine, "BP.L") == [(BP_MISSING, "gap")]
    with engine.connect() as connection:
        stored = dict(connection.execute(sa.text("SELECT ticker, calendar FROM forecast_series")).all())
    assert stored == {t: CALENDARS[t] for t in EUROPE}


def test_crypto_is_forecast_every_day_and_through_its_42_percent_crash_in_a_backfill(engine):
    start, end = date(2022, 11, 1), date(2022, 11, 20)

    backfill(_context(engine, ["SOL-USD"], "global_daily_long.csv"), start, end)

    assert _forecasts(engine, "SOL-USD") == [(d, date.fromordinal(d.toordinal() + 1)) for d in _days(start, end)]
    assert (SOL_CRASH, "jump") in _events(engine, "SOL-USD")


def test_crypto_is_forecast_through_its_crash_by_a_daily_catch_up(engine):
    context = _context(engine, ["SOL-USD"], "global_daily_long.csv")
    backfill(context, date(2022, 11, 1), date(2022, 11, 5))

    for day in _days(date(2022, 11, 6), date(2022, 11, 14)):  # the daemon, one trigger a day
        catch_up(context, day)

    assert [a for a, _ in _forecasts(engine, "SOL-USD")] == _days(date(2022, 11, 1), date(2022, 11, 14))
    assert (SOL_CRASH, "jump") in _events(engine, "SOL-USD")


def test_amd_is_forecast_through_its_52_percent_jump_by_a_catch_up_after_a_backfill(engine):
    context = _context(engine, ["AMD"], "sp500_stocks_2013_2018_long.csv")
    backfill(context, date(2016, 4, 1), date(2016, 4, 21))

    catch_up(context, date(2016, 5, 31))  # `run --once --as-of 2016-05-31`

    assert _forecasts(engine, "AMD") == _every_session_to_its_next("AMD", date(2016, 4, 1), date(2016, 5, 31))
    assert (AMD_JUMP, "jump") in _events(engine, "AMD")
    with engine.connect() as connection:
        failures = connection.execute(sa.text("SELECT count(*) FROM run_failures")).scalar_one()
    assert failures == 0


def test_amd_is_forecast_through_its_jump_by_a_backfill_over_it(engine):
    backfill(_context(engine, ["AMD"], "sp500_stocks_2013_2018_long.csv"), date(2016, 4, 18), date(2016, 4, 29))

    assert _forecasts(engine, "AMD") == _every_session_to_its_next("AMD", date(2016, 4, 18), date(2016, 4, 29))
    assert (AMD_JUMP, "jump") in _events(engine, "AMD")


def _days(start: date, end: date) -> list[date]:
    return [date.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1)]
