"""PostgreSQL goes down in the middle of a daemon cycle and comes back: the cycle completes.
And a daemon started before its database (a container beside a server still starting) waits.

The daemon (a real `forecaster run` process, 100 tickers so the cycle's first fits last
several seconds) works against a private PostgreSQL server (tests/support/postgres_server.py;
the shared one is never stopped). Once the cycle has written its first forecasts, the server
is stopped the hard way (`pg_ctl stop -m immediate`, like a crash) and started again two
seconds later. The scheduler lease is a row that outlives the outage (it is shorter than the
lease), so the daemon stays the scheduler: its job retries, closes the cut-off run as
interrupted (its end could not be recorded), and a later run finishes the work, without losing
or repeating a forecast, each forecast counted once.
"""

from __future__ import annotations

import signal
import time

from tests.support.processes import (
    forecaster_env,
    forecaster_running,
    query_scalar,
    wait_for,
)

TICKERS = [f"T{k:03d}" for k in range(100)]


def test_a_cycle_that_loses_postgresql_midway_retries_and_completes_once_it_is_back(private_postgres, tmp_path):
    url = private_postgres.url
    env = forecaster_env(
        url,
        source="synthetic",
        tickers=",".join(TICKERS),
        database_retries="5",
        database_backoff_seconds="1",
        report_dir=str(tmp_path / "reports"),
    )
    log_path = tmp_path / "daemon.log"
    with forecaster_running("run", env=env, log_path=log_path) as daemon:
        wait_for(lambda: (query_scalar(url, "SELECT count(*) FROM predictions") or 0) > 0, 120, "the first forecasts")
        private_postgres.stop("immediate")
        time.sleep(2)
        assert daemon.poll() is None, "the daemon must survive the outage"
        private_postgres.start()
        wait_for(
            lambda: query_scalar(url, "SELECT count(*) FROM predictions") == len(TICKERS),
            120,
            "every forecast after the outage",
        )
        wait_for(
            lambda: query_scalar(url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0,
            30,
            "the runs to be closed",
        )
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    log = log_path.read_text()

    assert log.count("daemon started as the scheduler") == 1 and "lost the scheduler lock" not in log, log[-3000:]
    runs = query_scalar(url, "SELECT string_agg(status || ':' || coalesce(error, ''), ' | ' ORDER BY id) FROM runs")
    *earlier, last = runs.split(" | ")
    assert last.startswith("ok:"), runs
    assert all(run.startswith("interrupted:") for run in earlier), runs
    assert query_scalar(url, "SELECT sum(tickers_ok) FROM runs") == len(TICKERS), "every forecast counted in one run"
    # Every ticker forecast exactly once, each with its model state and first-fit losses.
    assert query_scalar(url, "SELECT count(DISTINCT ticker) FROM predictions") == len(TICKERS)
    assert query_scalar(url, "SELECT count(*) FROM model_states") == len(TICKERS)
    assert query_scalar(
        url,
        """
        SELECT count(*) FROM predictions p JOIN model_states s
          ON s.ticker = p.ticker AND s.preset = p.preset AND s.trained_through = p.as_of
        WHERE (SELECT count(*) FROM training_losses l WHERE l.ticker = s.ticker AND l.preset = s.preset
               AND l.trained_through = s.trained_through) = 109""",
    ) == len(TICKERS)  # epochs 1-10, every 10th
    assert query_scalar(url, "SELECT count(*) FROM cycle_tasks") == 0


def test_a_daemon_started_before_its_database_waits_for_it_and_then_forecasts(private_postgres, tmp_path):
    url = private_postgres.url
    tickers = TICKERS[:4]
    env = forecaster_env(
        url,
        source="synthetic",
        tickers=",".join(tickers),
        database_retries="10",
        database_backoff_seconds="1",
        report_dir=str(tmp_path / "reports"),
    )
    log_path = tmp_path / "daemon.log"
    private_postgres.stop("fast")
    with forecaster_running("run", env=env, log_path=log_path) as daemon:
        wait_for(lambda: "database unavailable" in log_path.read_text(), 60, "a retry of the first connection")
        assert daemon.poll() is None, "the daemon must wait for its database, not exit"
        private_postgres.start()
        wait_for(
            lambda: query_scalar(url, "SELECT count(*) FROM predictions") == len(tickers),
            120,
            "the forecasts once the database is up",
        )
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0


def test_a_long_outage_is_one_line_per_daemon_thread_and_one_when_it_ends(private_postgres, tmp_path):
    """Two idle daemons through 20 s without their database: each says once that its worker
    cannot reach it, once that it cannot take the lock, and once each that it is back."""
    env = forecaster_env(
        private_postgres.url, source="synthetic", tickers="AAA,BBB", report_dir=str(tmp_path / "reports")
    )
    logs = [tmp_path / f"daemon{k}.log" for k in range(2)]
    with forecaster_running("run", env=env, log_path=logs[0]), forecaster_running("run", env=env, log_path=logs[1]):
        wait_for(
            lambda: query_scalar(private_postgres.url, "SELECT count(*) FROM runs WHERE status = 'ok'") == 1,
            120,
            "the catch-up",
        )
        private_postgres.stop("fast")
        time.sleep(20)  # four of the worker's 5 s retries, ten of the lock's 2 s ones
        private_postgres.start()
        wait_for(
            lambda: all("worker: database reachable again" in log.read_text() for log in logs), 60, "both workers back"
        )
    for log in logs:
        text = log.read_text()
        assert text.count("worker: database unavailable") == 1, text
        assert text.count("worker: database reachable again") == 1, text
        assert "claim failed" not in text and "Traceback" not in text, text
        assert text.count("WARNING forecaster.daemon.process: database unavailable") <= 1, text
