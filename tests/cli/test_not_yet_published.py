"""A close not published yet is waited for, never given up, and a session that has not closed is refused.

The sequence of the issue that found it, through the commands (in-process, forecaster.cli.main,
settings from the environment, the real clock): a CSV source two sessions behind the market,
`run --once` again and again, an `--as-of` past the latest closed session, then the missing
closes arrive, and every forecast is written. Dates are taken relative to today's latest closed
NYSE session, so the test means the same whenever it runs.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.cli import main
from tests.support.sessions import latest_closed_now

pytestmark = pytest.mark.usefixtures("restored_logging")

NYSE_CALENDAR = trading_calendar(NYSE)
TICKERS = ("T01", "T02")


@pytest.fixture
def latest_closed() -> date:
    return latest_closed_now(NYSE)


def _write_closes(path: Path, latest: date, *, behind: int = 0, count: int = 320) -> None:
    """T01 and T02: `count` sessions of a calm random walk ending at `latest`, less the last `behind`."""
    sessions = NYSE_CALENDAR.sessions_between(NYSE_CALENDAR.sessions_back(latest, count - 1), latest)
    sessions = sessions[: len(sessions) - behind]
    walk = np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.01, size=(len(TICKERS), len(sessions))), axis=1))
    lines = ["date,ticker,close"]
    lines += [f"{d},{t},{100 * walk[i, j]:.4f}" for i, t in enumerate(TICKERS) for j, d in enumerate(sessions)]
    path.write_text("\n".join(lines) + "\n")


def _forecast(argv: list[str], monkeypatch, capsys, url: str, prices: Path) -> tuple[int, str]:
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FORECASTER_DATABASE_URL", url)
    monkeypatch.setenv("FORECASTER_SOURCE", f"csv:{prices}")
    monkeypatch.setenv("FORECASTER_TICKERS", ",".join(TICKERS))
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def _forecast_sessions(url: str) -> dict[str, list[date]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT ticker, as_of FROM predictions ORDER BY ticker, as_of")).all()
            given_up = connection.execute(sa.text("SELECT count(*) FROM run_failures")).scalar_one()
    finally:
        engine.dispose()
    assert given_up == 0, "waiting for a close is never a failure"
    sessions: dict[str, list[date]] = {t: [] for t in TICKERS}
    for ticker, as_of in rows:
        sessions[ticker].append(as_of if isinstance(as_of, date) else date.fromisoformat(as_of))
    return sessions


def test_a_source_two_sessions_behind_is_waited_for_and_every_forecast_is_written_once_it_catches_up(
    database_url, tmp_path, monkeypatch, capsys, latest_closed
):
    prices = tmp_path / "prices.csv"
    behind = NYSE_CALENDAR.sessions_back(latest_closed, 3)  # the source lacks the two sessions after it
    _write_closes(prices, latest_closed, behind=2)
    code, output = _forecast(["run", "--once", "--as-of", str(behind)], monkeypatch, capsys, database_url, prices)
    assert code == 0, output

    for _ in range(4):  # more than the three failures that gave a session up before
        code, output = _forecast(["run", "--once"], monkeypatch, capsys, database_url, prices)
        assert "2 waiting for a close" in output, output
    future = NYSE_CALENDAR.next_session(latest_closed)
    code, output = _forecast(["run", "--once", "--as-of", str(future)], monkeypatch, capsys, database_url, prices)
    assert code == 2 and f"its latest closed session is {latest_closed}" in output, output
    assert _forecast_sessions(database_url) == {t: [behind] for t in TICKERS}
    code, output = _forecast(["status"], monkeypatch, capsys, database_url, prices)
    assert code == 1 and "OVERDUE" in output and "2 ticker(s) waiting for a close" in output, output

    _write_closes(prices, latest_closed)  # the two closes are published at last
    code, output = _forecast(["run", "--once"], monkeypatch, capsys, database_url, prices)

    assert code == 0, output
    every = NYSE_CALENDAR.sessions_between(behind, latest_closed)
    assert _forecast_sessions(database_url) == {t: every for t in TICKERS}
    code, output = _forecast(["status"], monkeypatch, capsys, database_url, prices)
    assert code == 0, output


def test_a_backfill_ending_after_the_latest_closed_session_is_refused_naming_it_before_any_database_work(
    sqlite_url, tmp_path, monkeypatch, capsys, latest_closed
):
    prices = tmp_path / "prices.csv"
    _write_closes(prices, latest_closed)
    start, end = NYSE_CALENDAR.sessions_back(latest_closed, 3), NYSE_CALENDAR.next_session(latest_closed)

    code, output = _forecast(
        ["backfill", "--start", str(start), "--end", str(end)], monkeypatch, capsys, sqlite_url, prices
    )

    assert code == 2 and output.count("\n") == 1, output
    assert f"--end {end}" in output and f"its latest closed session is {latest_closed}" in output, output
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists(), "refused before the database is touched"
