"""`forecaster status`: failing before any run; a ticker probably delisted is listed but leaves the
job healthy; with --process, the daemon's heartbeat says it is alive and reaches the database."""

from __future__ import annotations

import os
import signal
from datetime import UTC, date, datetime

from forecaster.calendar import NYSE, trading_calendar
from forecaster.config import Settings
from forecaster.daemon.health import check_health
from tests.support.fakes import UNKNOWN_TICKER, FaultySource
from tests.support.processes import forecaster_env, run_forecaster, start_forecaster, wait_for
from tests.support.sessions import catch_up_daily

LAST_CLOSE = date(2024, 3, 7)  # ZZZ's last close: the source returns no rows for it from the next session on
SILENT = trading_calendar(NYSE).sessions_between(date(2024, 3, 8), date(2024, 3, 15))  # 6 sessions
AFTER_THE_LAST = datetime(2024, 3, 16, 12, tzinfo=UTC)  # Saturday: the forecast from Friday 15 March is due


def test_status_fails_when_nothing_has_run_yet(sqlite_url):
    env = forecaster_env(sqlite_url)
    assert run_forecaster("db", "upgrade", env=env).returncode == 0

    status = run_forecaster("status", env=env)

    assert status.returncode == 1
    assert "no run yet" in status.stdout


def test_a_ticker_probably_delisted_is_listed_but_leaves_the_job_healthy(migrated_engine, monkeypatch):
    """The job forecast the rest of the watch list on time: the fix is in the watch list, not the job."""
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    catch_up_daily(migrated_engine, ["AAA", "ZZZ"], FaultySource(seed=3), [date(2024, 3, 6), LAST_CLOSE])
    catch_up_daily(migrated_engine, ["AAA", "ZZZ"], FaultySource(seed=3, failing=["ZZZ"]), SILENT)

    health = check_health(migrated_engine, Settings(tickers="AAA,ZZZ"), AFTER_THE_LAST)

    line = f"probably delisted: ZZZ (XNYS): no data for 6 sessions since {LAST_CLOSE} ({UNKNOWN_TICKER})"
    assert line in health.lines
    assert health.healthy and health.lines[-1] == "healthy"


def test_a_daemons_heartbeat_says_it_is_alive_and_reaches_the_database_until_it_stops(sqlite_url, tmp_path):
    beat = tmp_path / "heartbeat.json"
    env = forecaster_env(sqlite_url, source="synthetic", tickers="AAA", heartbeat_file=str(beat))
    before = run_forecaster("status", "--process", env=env)
    daemon = start_forecaster("run", env=env, log_path=tmp_path / "daemon.log")
    try:
        wait_for(beat.exists, 90, "the first heartbeat")
        alive = run_forecaster("status", "--process", env=env)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)

    assert before.returncode == 1 and "the daemon is not running" in before.stdout
    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert f"pid {daemon.pid} (scheduler)" in alive.stdout and "reaches the database" in alive.stdout
