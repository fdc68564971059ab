"""`forecaster status`: failing before any run; a ticker probably delisted is listed but leaves the
job healthy; with --process, the daemon's heartbeat says it is alive and reaches the database, a
heartbeat from the future proves nothing, and a heartbeat file that cannot be written is said once."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, date, datetime
from pathlib import Path

from forecaster.calendar import NYSE, trading_calendar
from forecaster.cli import main
from forecaster.config import Settings
from forecaster.daemon.health import check_health
from forecaster.daemon.heartbeat import ProcessHealth, check_process
from forecaster.daemon.process import LEADERSHIP_POLL_SECONDS
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


def test_status_json_gives_the_same_verdict_and_facts_as_the_lines_with_times_in_utc(
    migrated_engine, monkeypatch, capsys
):
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    catch_up_daily(migrated_engine, ["AAA", "ZZZ"], FaultySource(seed=3), [date(2024, 3, 6), LAST_CLOSE])
    catch_up_daily(migrated_engine, ["AAA", "ZZZ"], FaultySource(seed=3, failing=["ZZZ"]), SILENT)
    url = ["--database-url", migrated_engine.url.render_as_string(hide_password=False)]
    monkeypatch.setenv("FORECASTER_TICKERS", "AAA,ZZZ")

    assert main(["status", *url]) == 1  # today, the forecast from the latest session of 2026 is missing
    lines = capsys.readouterr().out.splitlines()
    assert main(["status", "--json", *url]) == 1
    facts = json.loads(capsys.readouterr().out)

    assert (facts["healthy"], lines[-1]) == (False, "UNHEALTHY")
    assert facts["last_run"]["as_of"] == "2024-03-15" and facts["last_run"]["status"] == "partial"
    assert facts["last_run"]["finished_at"].endswith("+00:00") and facts["checked_at"].endswith("+00:00")
    (market,) = facts["markets"]
    assert (market["calendar"], market["latest_as_of"]) == ("XNYS", "2024-03-15")
    assert market["overdue_as_of"] > "2024-03-15" and market["next_run"].endswith("+00:00")
    assert [(f["ticker"], f["stage"]) for f in facts["failing"]] == [("ZZZ", "fetch")]
    assert [(d["ticker"], d["sessions_without_data"]) for d in facts["probably_delisted"]] == [("ZZZ", 6)]


def test_a_daemons_heartbeat_says_it_is_alive_and_reaches_the_database_until_it_stops(sqlite_url, tmp_path):
    beat = tmp_path / "heartbeat.json"
    env = forecaster_env(
        sqlite_url, source="synthetic", tickers="AAA", heartbeat_file=str(beat), report_dir=str(tmp_path / "reports")
    )
    before = run_forecaster("status", "--process", env=env)
    daemon = start_forecaster("run", env=env, log_path=tmp_path / "daemon.log")
    try:
        # The first beat is the start's check of the file ("starting", not connected yet).
        wait_for(lambda: _role(beat) == "scheduler", 90, "a beat of the scheduler's loop")
        alive = run_forecaster("status", "--process", env=env)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)

    assert before.returncode == 1 and "the daemon is not running" in before.stdout
    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert f"pid {daemon.pid} (scheduler)" in alive.stdout and "reaches the database" in alive.stdout


def _role(beat: Path) -> str | None:
    try:
        return json.loads(beat.read_text())["role"]
    except (OSError, ValueError):
        return None


def test_a_heartbeat_dated_in_the_future_is_unhealthy_and_says_why(tmp_path):
    beat = tmp_path / "heartbeat.json"
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    beat.write_text('{"pid": 7, "role": "scheduler", "database": "ok", "time": "2099-01-01T00:00:00+00:00"}')

    health = check_process(str(beat), now)

    assert not health.healthy
    assert health.line.startswith(f"UNHEALTHY: the heartbeat at {beat} of pid 7 (scheduler) is dated ")
    assert "ahead of this host's clock" in health.line


def test_a_heartbeat_a_moment_ahead_reads_as_just_written(tmp_path):
    beat = tmp_path / "heartbeat.json"
    beat.write_text('{"pid": 7, "role": "worker", "database": "ok", "time": "2026-12-04T12:00:02+00:00"}')

    health = check_process(str(beat), datetime(2026, 12, 4, 12, tzinfo=UTC))

    assert health == ProcessHealth(True, "healthy: pid 7 (worker) beat 0 s ago and reaches the database")


def test_a_heartbeat_file_that_stops_being_writable_is_said_once_and_again_when_it_recovers(sqlite_url, tmp_path):
    beats = tmp_path / "beats"
    beats.mkdir()
    env = forecaster_env(
        sqlite_url,
        source="synthetic",
        tickers="AAA",
        heartbeat_file=str(beats / "heartbeat.json"),
        report_dir=str(tmp_path / "reports"),
    )
    log = tmp_path / "daemon.log"
    daemon = start_forecaster("run", env=env, log_path=log)
    try:
        wait_for(lambda: _role(beats / "heartbeat.json") == "scheduler", 90, "the scheduler's beat")
        beats.rename(tmp_path / "moved")  # its directory gone: every beat fails
        wait_for(lambda: "cannot write the heartbeat file" in log.read_text(), 30, "the daemon to say so")
        time.sleep(3 * LEADERSHIP_POLL_SECONDS)  # a few more failed beats
        (tmp_path / "moved").rename(beats)
        wait_for(lambda: "written again" in log.read_text(), 30, "the daemon to say it beats again")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    text = log.read_text()
    assert text.count("cannot write the heartbeat file") == 1, text[-3000:]
    assert f"cannot write the heartbeat file {beats / 'heartbeat.json'} (No such file or directory)" in text
