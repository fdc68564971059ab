"""One process starts cycles on a database at a time; a second writing command is refused with one line.

SQLite: every command that writes (run, run --once, backfill, db upgrade, db prune) takes a lock on a
file beside the database, keyed on the file's real path; a second one exits 2 before touching
anything. PostgreSQL: `run --once`, `backfill` and `db prune` take the scheduler lock for their whole run
and are refused while a daemon holds it; the daemon's run is never marked interrupted by them.
Real processes throughout.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from tests.support.processes import (
    forecaster_env,
    query_scalar,
    run_forecaster,
    start_forecaster,
    stop_forecaster,
    wait_for,
)

TICKERS = ",".join(f"T{k:02d}" for k in range(30))
BACKFILL = ("backfill", "--start", "2024-03-01", "--end", "2024-03-08")


def _everything(path: Path) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr) for table in tables}
    finally:
        connection.close()


def _refused(result) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "SQLite supports a single worker, use PostgreSQL for several" in result.stderr


def test_while_a_backfill_writes_to_a_sqlite_file_every_other_writing_command_is_refused(tmp_path):
    database = tmp_path / "forecaster.db"
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "link.db"
    link.symlink_to(database)
    env = forecaster_env(f"sqlite:///{database}", source="synthetic", tickers=TICKERS)
    first = start_forecaster(*BACKFILL, env=env, log_path=tmp_path / "first.log")
    try:
        wait_for(
            lambda: (query_scalar(f"sqlite:///{database}", "SELECT count(*) FROM runs") or 0) > 0,
            60,
            "the first backfill's run",
        )
        first.send_signal(signal.SIGSTOP)  # frozen mid-backfill, holding the lock, for as long as the checks take
        before = _everything(database)

        results = {
            " ".join(command): run_forecaster(*command, env=env)
            for command in (BACKFILL, ("run", "--once"), ("db", "upgrade"), ("db", "prune"))
        }
        results["backfill through a symlink"] = run_forecaster(
            *BACKFILL, env=forecaster_env(f"sqlite:///{link}", source="synthetic", tickers=TICKERS)
        )
    finally:
        first.send_signal(signal.SIGCONT)
        code = stop_forecaster(first)
    assert code in (0, 1), (tmp_path / "first.log").read_text()[-3000:]
    for command, result in results.items():
        _refused(result)
        assert "forecaster backfill on" in result.stderr and f"pid {first.pid}" in result.stderr, command
    assert set(before) <= set(_everything(database)), "the refused commands created or dropped nothing"


def test_run_once_and_backfill_are_refused_while_a_daemon_schedules_on_postgresql(postgres_url, tmp_path):
    env = forecaster_env(postgres_url, source="synthetic", tickers=TICKERS, report_dir=str(tmp_path / "reports"))
    daemon = start_forecaster("run", env=env, log_path=tmp_path / "daemon.log")
    try:
        wait_for(
            lambda: query_scalar(postgres_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 1,
            90,
            "the daemon's catch-up run",
        )
        running = query_scalar(postgres_url, "SELECT id FROM runs WHERE status = 'running'")

        refused = [run_forecaster(*command, env=env) for command in (("run", "--once"), BACKFILL, ("db", "prune"))]

        assert query_scalar(postgres_url, f"SELECT status FROM runs WHERE id = {running}") in ("running", "ok")
        wait_for(
            lambda: query_scalar(postgres_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0,
            120,
            "the daemon's run to finish",
        )
    finally:
        assert stop_forecaster(daemon) == 0
    for result in refused:
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "(forecaster run on" in result.stderr and f"pid {daemon.pid}" in result.stderr
        assert "holds this database's scheduler lock" in result.stderr
    assert query_scalar(postgres_url, "SELECT string_agg(status, ',') FROM runs") == "ok", (
        "no run of the daemon's was cut short"
    )


def test_a_second_process_on_a_sqlite_database_a_daemon_runs_on_is_refused(sqlite_url, tmp_path):
    env = forecaster_env(sqlite_url, source="synthetic", tickers="AAA")
    daemon = start_forecaster("run", env=env, log_path=tmp_path / "daemon.log")
    try:
        wait_for(lambda: "daemon running" in (tmp_path / "daemon.log").read_text(), 60, "the daemon")

        second = run_forecaster("run", "--once", env=env)
    finally:
        assert stop_forecaster(daemon) == 0

    _refused(second)
