"""`forecaster status`: failing before any run; with --process, the daemon's heartbeat says it is alive and reaches the database."""

from __future__ import annotations

import signal

from tests.support.processes import forecaster_env, run_forecaster, start_forecaster, wait_for


def test_status_fails_when_nothing_has_run_yet(sqlite_url):
    env = forecaster_env(sqlite_url)
    assert run_forecaster("db", "upgrade", env=env).returncode == 0

    status = run_forecaster("status", env=env)

    assert status.returncode == 1
    assert "no run yet" in status.stdout


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
