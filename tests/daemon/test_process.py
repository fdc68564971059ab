"""The real daemon process: catch-up at start, clean exit on SIGTERM, consistent rows.

(What `forecaster status` says about it: tests/daemon/test_health.py.)
"""

from __future__ import annotations

import signal
from datetime import date, timedelta

import pytest

from forecaster.calendar import trading_calendar
from tests.support.consistency import bookkeeping_problems, half_written
from tests.support.processes import (
    forecaster_env,
    forecaster_running,
    query_rows,
    query_scalar,
    run_forecaster,
    start_forecaster,
    wait_for,
)
from tests.support.sessions import latest_closed_now

TICKERS = "AAA,BBB,CCC,DDD"


def test_the_daemon_catches_up_at_start_then_exits_cleanly_on_sigterm(database_url, tmp_path):
    env = forecaster_env(database_url, source="synthetic", tickers=TICKERS, report_dir=str(tmp_path / "reports"))
    with forecaster_running("run", env=env, log_path=tmp_path / "daemon.log") as daemon:
        wait_for(
            lambda: (query_scalar(database_url, "SELECT count(*) FROM predictions") or 0) >= 4,
            90,
            "the catch-up forecasts",
        )
        wait_for(
            lambda: query_scalar(database_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0,
            30,
            "the run to finish",
        )
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    log = (tmp_path / "daemon.log").read_text()
    assert "daemon started" in log and "daemon stopped" in log, log
    assert query_scalar(database_url, "SELECT count(*) FROM runs WHERE status <> 'ok'") == 0
    assert half_written(database_url) == []
    status = run_forecaster("status", env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "healthy" in status.stdout


MIXED = {"AAA": "XNYS", "7203.T": "XTKS", "VOD.L": "XLON", "BTC-USD": "24/7"}


def _one_market_holiday() -> tuple[date, date]:
    """The latest recent day on which some of the exchanges of MIXED traded and others did not,
    and a day before it on which all of them traded."""
    exchanges = [trading_calendar(c) for c in MIXED.values() if c != "24/7"]
    day = min(latest_closed_now(c) for c in MIXED.values())
    while sum(market.is_session(day) for market in exchanges) in (0, len(exchanges)):
        day -= timedelta(days=1)
    before = day - timedelta(days=1)
    while not all(market.is_session(before) for market in exchanges):
        before -= timedelta(days=1)
    return day, before


def _as_ofs(url: str, ticker: str) -> list[date]:
    rows = query_rows(url, f"SELECT as_of FROM predictions WHERE ticker = '{ticker}' ORDER BY as_of")
    return [d if isinstance(d, date) else date.fromisoformat(d) for (d,) in rows]


def test_a_daemon_down_over_one_markets_holiday_catches_up_each_market_on_its_own_sessions(database_url, tmp_path):
    holiday, start = _one_market_holiday()  # e.g. Thanksgiving: New York closed, Tokyo and London open
    env = forecaster_env(database_url, source="synthetic", tickers=",".join(MIXED), report_dir=str(tmp_path / "r"))
    backfill = run_forecaster("backfill", "--start", str(start), "--end", str(start), env=env)
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    owed = {t: trading_calendar(c).sessions_between(start, latest_closed_now(c)) for t, c in MIXED.items()}

    with forecaster_running("run", env=env, log_path=tmp_path / "daemon.log") as daemon:
        wait_for(
            lambda: query_scalar(database_url, "SELECT count(*) FROM predictions") == sum(map(len, owed.values())),
            180,
            "every market caught up",
        )
        wait_for(
            lambda: query_scalar(database_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0,
            30,
            "the runs",
        )
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0

    assert {t: _as_ofs(database_url, t) for t in MIXED} == owed
    assert [t for t, c in MIXED.items() if trading_calendar(c).is_session(holiday)] != list(MIXED)
    assert any(holiday in sessions for sessions in owed.values()), "the markets open that day forecast from it"
    assert bookkeeping_problems(database_url, watch_list=dict.fromkeys(MIXED.values(), 1)) == []


def test_sigterm_mid_cycle_records_the_run_as_interrupted_and_the_next_start_completes_it(database_url, tmp_path):
    tickers = ",".join(f"T{k:03d}" for k in range(200))  # first fits in four chunks
    env = forecaster_env(database_url, source="synthetic", tickers=tickers, log_format="json")
    with forecaster_running("run", env=env, log_path=tmp_path / "daemon.log") as daemon:
        wait_for(
            lambda: (query_scalar(database_url, "SELECT count(*) FROM predictions") or 0) > 0, 90, "the first chunk"
        )
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    written = query_scalar(database_url, "SELECT count(*) FROM predictions")
    assert 0 < written < 200, "the stop should land mid-cycle"
    assert query_scalar(database_url, "SELECT status FROM runs ORDER BY id DESC LIMIT 1") == "interrupted"
    assert half_written(database_url) == []

    rerun = run_forecaster("run", "--once", env=env, timeout=180)

    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert query_scalar(database_url, "SELECT count(*) FROM predictions") == 200
    assert half_written(database_url) == []


@pytest.mark.parametrize("schedule", ["not a cron", "61 18 * * 1-5"])
def test_a_bad_schedule_is_a_one_line_error(sqlite_url, schedule):
    result = run_forecaster("run", env=forecaster_env(sqlite_url, schedule=schedule, source="synthetic"))

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "schedule" in result.stderr, result.stderr


def test_run_once_stops_at_a_chunk_on_sigterm_and_running_it_again_completes_the_day(database_url, tmp_path):
    tickers = ",".join(f"T{k:03d}" for k in range(200))  # first fits in four chunks
    env = forecaster_env(database_url, source="synthetic", tickers=tickers)
    with forecaster_running("run", "--once", env=env, log_path=tmp_path / "once.log") as once:
        wait_for(
            lambda: (query_scalar(database_url, "SELECT count(*) FROM predictions") or 0) > 0, 90, "the first chunk"
        )
        once.send_signal(signal.SIGTERM)
        code = once.wait(timeout=60)
    assert code == 1, "stopped before the end of the day: not done"
    assert "stopped before the end; run the same command again to complete it" in (tmp_path / "once.log").read_text()
    assert query_scalar(database_url, "SELECT status FROM runs") == "interrupted"
    assert 0 < query_scalar(database_url, "SELECT count(*) FROM predictions") < 200
    assert half_written(database_url) == []

    again = run_forecaster("run", "--once", env=env, timeout=180)

    assert again.returncode == 0, again.stderr[-2000:]
    assert query_scalar(database_url, "SELECT count(*) FROM predictions") == 200
    assert query_scalar(database_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0
    assert query_scalar(database_url, "SELECT sum(tickers_ok) FROM runs") == 200, "each forecast counted in one run"


def test_a_killed_backfills_run_is_closed_by_the_next_command_that_takes_the_database(sqlite_url, tmp_path):
    env = forecaster_env(sqlite_url, source="synthetic", tickers=TICKERS)
    backfill = start_forecaster(
        "backfill", "--start", "2024-03-01", "--end", "2024-03-08", env=env, log_path=tmp_path / "b.log"
    )
    try:
        wait_for(
            lambda: query_scalar(sqlite_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 1, 60, "a run"
        )
    finally:
        backfill.kill()
        backfill.wait()

    again = run_forecaster("backfill", "--start", "2024-03-01", "--end", "2024-03-08", env=env)

    assert again.returncode == 0, again.stderr
    assert query_scalar(sqlite_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0
    assert query_scalar(sqlite_url, "SELECT count(*) FROM runs WHERE status = 'interrupted'") == 1
    assert query_scalar(sqlite_url, "SELECT count(*) FROM predictions") == 4 * 6


def test_a_sqlite_file_deleted_under_the_daemon_is_one_error_line_per_trigger_and_never_recreated(tmp_path):
    database = tmp_path / "forecaster.db"
    url = f"sqlite:///{database}"
    env = forecaster_env(
        url,
        source="synthetic",
        tickers="AAA",
        schedule="*/2 * * * * *",
        database_retries="0",
        report_schedule="*/3 * * * * *",
        report_dir=str(tmp_path / "reports"),
    )
    log = tmp_path / "daemon.log"
    with forecaster_running("run", env=env, log_path=tmp_path / "daemon.log") as daemon:
        wait_for(lambda: "run 1 ok" in log.read_text(), 90, "the catch-up")
        for path in tmp_path.glob("forecaster.db*"):
            if path.suffix != ".lock":
                path.unlink()
        wait_for(lambda: log.read_text().count("unable to open database file") >= 3, 60, "three failed jobs")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert (
        "forecast job (the trigger at" in text
        and "failed: database unavailable (OperationalError: unable to open database file)" in text
    )
    assert "report job failed: OperationalError: unable to open database file" in text
    assert not database.exists()
