"""Several `forecaster run` processes on one PostgreSQL share each cycle; SQLite allows one."""

from __future__ import annotations

import signal
import socket
from datetime import datetime, timezone


from forecaster import calendar
from tests.support.processes import forecaster_env, query_scalar, run_forecaster, start_forecaster, wait_for

TICKERS = [f"W{k:02d}" for k in range(60)]
SESSIONS = 10


def _stop(process) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def test_three_workers_share_ten_sessions_and_finish_a_killed_workers_tickers(postgres_url, tmp_path):
    latest = calendar.latest_completed_session(datetime.now(timezone.utc))
    start = calendar.sessions_back(latest, SESSIONS + 1)  # forecast from here alone first: 10 sessions remain
    env = forecaster_env(
        postgres_url, source="synthetic", tickers=",".join(TICKERS), claim_size="3", lease_seconds="4", log_format="json",
    )
    first = run_forecaster("run", "--once", "--as-of", start.isoformat(), env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]

    workers = [start_forecaster("run", env=env, log_path=tmp_path / f"worker{k}.log") for k in range(3)]
    leader, victim = 0, None
    try:
        wait_for(lambda: any("daemon started as the scheduler" in (tmp_path / f"worker{k}.log").read_text() for k in range(3)), 60, "a scheduler")
        leader = next(k for k in range(3) if "daemon started as the scheduler" in (tmp_path / f"worker{k}.log").read_text())
        victim = workers[(leader + 1) % 3]
        victim_id = f"{socket.gethostname()}:{victim.pid}"
        wait_for(
            lambda: query_scalar(postgres_url, f"SELECT count(*) FROM cycle_tasks WHERE status = 'leased' AND worker = '{victim_id}'"),
            120, "the victim to hold a lease", interval=0.01,
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        expected = len(TICKERS) * (SESSIONS + 1)
        wait_for(lambda: query_scalar(postgres_url, "SELECT count(*) FROM predictions") == expected, 180, "every forecast")
        wait_for(lambda: query_scalar(postgres_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0, 60, "the runs to finish")
    finally:
        # The scheduler last: stopped first, a surviving worker would rightly take its place.
        survivors = sorted((w for w in workers if w is not victim), key=lambda w: w is workers[leader])
        codes = [_stop(worker) for worker in survivors]

    assert codes == [0, 0]
    # Each (ticker, target session) exactly once: the key forbids duplicates, the count forbids gaps.
    assert query_scalar(postgres_url, "SELECT count(DISTINCT ticker || target_session) FROM predictions") == expected
    assert query_scalar(postgres_url, "SELECT count(*) FROM runs WHERE kind = 'daily' AND status <> 'ok'") == 0
    assert query_scalar(
        postgres_url, f"SELECT count(*) FROM runs WHERE tickers_ok + tickers_failed + tickers_skipped <> {len(TICKERS)}"
    ) == 0
    assert query_scalar(postgres_url, "SELECT sum(tickers_ok) FROM runs") == expected
    assert query_scalar(postgres_url, "SELECT count(DISTINCT as_of) FROM runs") == SESSIONS + 1
    assert query_scalar(postgres_url, "SELECT count(*) FROM cycle_tasks") == 0
    logs = [(tmp_path / f"worker{k}.log").read_text() for k in range(3)]
    assert sum("daemon started as the scheduler" in log for log in logs) == 1, "one scheduler fires the cycles, not three"


def test_a_second_process_on_one_sqlite_database_is_refused(sqlite_url, tmp_path):
    env = forecaster_env(sqlite_url, source="synthetic", tickers="AAA")
    daemon = start_forecaster("run", env=env, log_path=tmp_path / "daemon.log")
    try:
        wait_for(lambda: "daemon running" in (tmp_path / "daemon.log").read_text(), 60, "the daemon")

        second = run_forecaster("run", "--once", env=env)
    finally:
        assert _stop(daemon) == 0

    assert second.returncode == 2
    assert "SQLite supports a single worker, use PostgreSQL for several" in second.stderr
    assert second.stderr.count("\n") == 1
