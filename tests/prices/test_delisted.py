"""A ticker the source has no data for over FORECASTER_DELISTED_AFTER_SESSIONS sessions in a row is probably delisted.

Driven by real catch-ups (forecaster.walks.catch_up, one a session, as the daemon runs them) over
a source whose chosen tickers fail as Yahoo reports them, on SQLite and PostgreSQL. A rate limit
or a network failure, which hits every ticker, never makes one probably delisted; a ticker that
returns rows again is no longer listed. `status` and the report list them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date

import pytest
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.cli import main
from forecaster.prices.delisted import ProbablyDelisted, probably_delisted
from forecaster.report.writer import write_report
from tests.support.fakes import UNKNOWN_TICKER, FaultySource
from tests.support.report_tables import table_row
from tests.support.sessions import catch_up_daily

NYSE_CALENDAR = trading_calendar(NYSE)
LAST_CLOSE = date(2024, 3, 7)  # ZZZ's last close: it returns nothing from the session after on
SILENT = NYSE_CALENDAR.sessions_between(date(2024, 3, 8), date(2024, 3, 15))  # 6 sessions


@pytest.fixture
def engine(migrated_engine) -> sa.Engine:
    return migrated_engine


def _delisted(engine: sa.Engine, calendars: dict[str, str], after: int = 5) -> list[ProbablyDelisted]:
    with engine.connect() as connection:
        return probably_delisted(calendars, connection=connection, after=after)


def _silent_from_friday(engine: sa.Engine, sessions: Sequence[date], reason: str = UNKNOWN_TICKER) -> None:
    catch_up_daily(engine, ["AAA", "ZZZ"], FaultySource(seed=3), [date(2024, 3, 6), LAST_CLOSE])
    catch_up_daily(engine, ["AAA", "ZZZ"], FaultySource(seed=3, failing=["ZZZ"], reason=reason), sessions)


def test_no_data_for_five_sessions_in_a_row_is_probably_delisted_and_four_is_not(engine):
    _silent_from_friday(engine, SILENT[:4])
    assert _delisted(engine, {"AAA": NYSE, "ZZZ": NYSE}) == []

    catch_up_daily(engine, ["AAA", "ZZZ"], FaultySource(seed=3, failing=["ZZZ"]), SILENT[4:5])

    assert _delisted(engine, {"AAA": NYSE, "ZZZ": NYSE}) == [
        ProbablyDelisted("ZZZ", NYSE, LAST_CLOSE, 5, UNKNOWN_TICKER)
    ]


@pytest.mark.parametrize("reason", ["rate limited: YFRateLimitError('Too Many Requests')", "network failure: DNS"])
def test_a_rate_limit_or_a_network_failure_never_makes_a_ticker_probably_delisted(engine, reason):
    _silent_from_friday(engine, SILENT, reason)

    assert _delisted(engine, {"AAA": NYSE, "ZZZ": NYSE}) == []


def test_a_ticker_that_returns_rows_again_is_no_longer_listed(engine):
    _silent_from_friday(engine, SILENT)
    assert [t.ticker for t in _delisted(engine, {"AAA": NYSE, "ZZZ": NYSE})] == ["ZZZ"]

    catch_up_daily(engine, ["AAA", "ZZZ"], FaultySource(seed=3), [date(2024, 3, 18)])

    assert _delisted(engine, {"AAA": NYSE, "ZZZ": NYSE}) == []


def test_the_sessions_counted_are_the_tickers_own_so_a_crypto_weekend_counts(engine):
    friday = date(2024, 3, 8)
    catch_up_daily(engine, ["BTC-USD"], FaultySource(seed=3), [date(2024, 3, 7), friday])
    weekend_on = [date(2024, 3, d) for d in (9, 10, 11, 12, 13)]  # Saturday to Wednesday: 5 sessions of 24/7

    catch_up_daily(engine, ["BTC-USD"], FaultySource(seed=3, failing=["BTC-USD"]), weekend_on)

    assert _delisted(engine, {"BTC-USD": "24/7"}) == [ProbablyDelisted("BTC-USD", "24/7", friday, 5, UNKNOWN_TICKER)]
    assert _delisted(engine, {"BTC-USD": "24/7"}, after=6) == []


@pytest.mark.usefixtures("restored_logging")
def test_status_and_the_report_list_a_ticker_probably_delisted(engine, database_url, tmp_path, monkeypatch, capsys):
    _silent_from_friday(engine, SILENT)
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    for name, value in {"database_url": database_url, "source": "synthetic", "tickers": "AAA,ZZZ"}.items():
        monkeypatch.setenv(f"FORECASTER_{name.upper()}", value)

    main(["status"])
    status = capsys.readouterr().out
    report = write_report(engine, as_of=SILENT[-1], preset="default", fmt="md", out_dir=tmp_path).read_text()

    assert f"probably delisted: ZZZ (XNYS): no data for 6 sessions since {LAST_CLOSE} ({UNKNOWN_TICKER})" in status
    assert table_row(report, "Probably delisted", "ZZZ") == ["ZZZ", "XNYS", str(LAST_CLOSE), "6", UNKNOWN_TICKER]
