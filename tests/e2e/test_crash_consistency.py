"""A backfill killed with SIGKILL at any point loses nothing committed, and a rerun completes it.

One uninterrupted `forecaster backfill` (20 tickers, 60 sessions, synthetic prices, a SQLite
file) is the reference. A second database gets the same command started again and again,
each start SIGKILLed at a later point: while starting up, right after the migrations (in the
fetch), right after the prices are stored, in the first fits (training), and at growing
forecast counts, some with a short delay so the kill lands inside a session's training or its
write. After every kill the database must be consistent (every forecast has its model state
and losses, and vice versa) and hold everything committed before. A last run to completion
must then leave exactly the reference's rows.

A SIGKILLed process cannot mark its run finished: such runs stay 'running' for ever (the
`runs` table is history, not product), which is expected and checked here. `created_at`,
`fetched_at` and `run_id` legitimately differ between the two databases and are not compared.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.consistency import half_written
from tests.support.processes import forecaster_env, forecaster_running, run_forecaster

TICKERS = ",".join(f"T{k:02d}" for k in range(20))
START, END = "2024-01-02", "2024-03-27"  # 60 sessions
SESSIONS = 60
FORECASTS = 20 * SESSIONS
EPOCHS_FIRST_FIT, EPOCHS_PER_SESSION = 1000, 10  # the default preset
STORED_FIRST_FIT = 109  # epochs 1-10, then every 10th (store/model_states.stored_epochs)
FITS = [(STORED_FIRST_FIT, EPOCHS_FIRST_FIT), (EPOCHS_PER_SESSION, EPOCHS_PER_SESSION)]  # a first fit, a daily fit
IGNORED_COLUMNS = {"created_at", "fetched_at", "run_id"}
COUNTED = ("prices", "runs", "predictions", "model_states", "training_losses")
#: What no run deletes (older model states and loss curves are pruned: forecaster.store.retention).
KEPT_FOR_GOOD = ("prices", "runs", "predictions")

Counts = dict[str, int]


@dataclass(frozen=True)
class KillPoint:
    """Kill once `reached(counts now, counts when this start began)` holds, `delay` seconds later."""

    aim: str
    reached: Callable[[Counts, Counts], bool]
    delay: float = 0.0


def _more(table: str, than: int = 0) -> Callable[[Counts, Counts], bool]:
    return lambda now, before: now[table] > max(before[table], than)


KILL_POINTS = [
    KillPoint("starting up (imports), nothing touched yet", lambda now, before: True, delay=0.3),
    KillPoint("just migrated: building the context and fetching", lambda now, before: now["tables"] > 0),
    KillPoint("prices just stored: the first cycle is starting", _more("prices")),
    KillPoint("training the first fits", _more("runs"), delay=0.4),
    KillPoint("after the first chunk of first fits", _more("predictions")),
    KillPoint("warm-start cycles, right after a commit", _more("predictions", 100)),
    KillPoint("warm-start cycles, inside a session", _more("predictions", 260), delay=0.04),
    KillPoint("warm-start cycles, inside a session", _more("predictions", 420), delay=0.08),
    KillPoint("warm-start cycles, inside a session", _more("predictions", 580), delay=0.02),
    KillPoint("warm-start cycles, inside a session", _more("predictions", 740), delay=0.06),
    KillPoint("warm-start cycles, inside a session", _more("predictions", 900), delay=0.1),
    KillPoint("near the end", _more("predictions", 1100), delay=0.03),
]


def _counts(path: Path) -> Counts:
    """Row counts read on a connection of our own (WAL: never blocks the writer, sees only commits)."""
    counts = dict.fromkeys(COUNTED, 0) | {"tables": 0}
    if not path.exists():
        return counts
    connection = sqlite3.connect(path, timeout=5)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts["tables"] = int("alembic_version" in tables and "predictions" in tables)
        for table in COUNTED:
            if table in tables:
                counts[table] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        connection.close()
    return counts


def _rows(path: Path) -> dict[str, list[tuple]]:
    """The product tables without the columns that say when or by which run a row was written."""
    connection = sqlite3.connect(path)
    try:
        result = {}
        for table, key in (
            ("prices", "ticker, session_date"),
            ("predictions", "ticker, preset, target_session"),
            ("model_states", "ticker, preset, trained_through"),
            ("training_losses", "ticker, preset, trained_through, epoch"),
        ):
            columns = [
                row[1] for row in connection.execute(f"PRAGMA table_info({table})") if row[1] not in IGNORED_COLUMNS
            ]
            result[table] = connection.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}").fetchall()
        return result
    finally:
        connection.close()


def _half_written(path: Path) -> list[str]:
    """Half-written tickers, and model states whose losses are not the epochs of one fit."""
    return half_written(f"sqlite:///{path}", fits=FITS)


def _last_log_line(log_path: Path) -> str:
    lines = [part.strip() for line in log_path.read_text(errors="replace").splitlines() for part in line.split("\r")]
    lines = [line for line in lines if line]
    return lines[-1][-120:] if lines else "(nothing logged yet)"


def _start_and_kill(point: KillPoint, env: dict[str, str], db: Path, log_path: Path) -> tuple[Counts, str]:
    before = _counts(db)
    with forecaster_running("backfill", "--start", START, "--end", END, env=env, log_path=log_path) as process:
        deadline = time.monotonic() + 60
        while not point.reached(_counts(db), before):
            assert process.poll() is None, f"the backfill ended (exit {process.returncode}) before '{point.aim}'"
            assert time.monotonic() < deadline, f"'{point.aim}' not reached in 60 s"
            time.sleep(0.01)
        time.sleep(point.delay)
        assert process.poll() is None, (
            f"the backfill ended (exit {process.returncode}) before the kill at '{point.aim}'"
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    return _counts(db), _last_log_line(log_path)


def _kill_again_and_again(env: dict[str, str], db: Path, logs: Path) -> list[str]:
    """Starts the backfill on `db` once per kill point and kills it there; checks the database
    after each kill; returns where each kill landed."""
    landings, previous = [], _counts(db)
    for number, point in enumerate(KILL_POINTS, 1):
        started = time.monotonic()
        counts, last_line = _start_and_kill(point, env, db, logs / f"kill{number}.log")
        landings.append(
            f"kill {number:2d} after {time.monotonic() - started:4.1f} s ({point.aim}): {counts} | last log line: {last_line}"
        )
        where = "\n".join(landings)
        problems = _half_written(db)
        assert not problems, f"{problems} after\n{where}"
        lost = [t for t in KEPT_FOR_GOOD if counts[t] < previous[t]]
        assert not lost, f"committed rows of {lost} disappeared after\n{where}"
        previous = counts
    return landings


def test_a_backfill_killed_at_twelve_points_then_rerun_leaves_exactly_the_rows_of_an_uninterrupted_run(tmp_path):
    reference_db, crashed_db = tmp_path / "reference.db", tmp_path / "crashed.db"
    settings = {"source": "synthetic", "tickers": TICKERS, "preset": "default"}
    env = forecaster_env(f"sqlite:///{crashed_db}", **settings)
    with forecaster_running(  # the uninterrupted run, beside the kills
        "backfill",
        "--start",
        START,
        "--end",
        END,
        env=forecaster_env(f"sqlite:///{reference_db}", **settings),
        log_path=tmp_path / "reference.log",
    ) as reference:
        landings = _kill_again_and_again(env, crashed_db, tmp_path)
        assert reference.wait(timeout=120) == 0, (tmp_path / "reference.log").read_text()[-2000:]
    print("\n".join(landings))  # noqa: T201 (where each kill landed: pytest -s shows it)
    # The kills landed in every phase: before anything was stored, with prices but no forecast yet,
    # and at many different points of the walk.
    forecast_counts = [int(line.split("'predictions': ")[1].split(",")[0]) for line in landings]
    assert any("'prices': 0" in line for line in landings), "\n".join(landings)
    assert any("'prices': 0" not in line and "'predictions': 0," in line for line in landings), "\n".join(landings)
    assert len(set(forecast_counts)) >= 8, "\n".join(landings)
    assert max(forecast_counts) < FORECASTS, "the last kill should land before the end"

    final = run_forecaster("backfill", "--start", START, "--end", END, env=env, timeout=120)

    assert final.returncode == 0, final.stderr[-2000:]
    expected = _rows(reference_db)
    assert len(expected["predictions"]) == FORECASTS
    assert _rows(crashed_db) == expected
    assert not _half_written(crashed_db)
    connection = sqlite3.connect(crashed_db)
    try:
        statuses = dict(connection.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        tasks_left = connection.execute("SELECT count(*) FROM cycle_tasks").fetchone()[0]
    finally:
        connection.close()
    # Every run ended ok, except those a SIGKILL cut short: they stay 'running' (or 'interrupted',
    # once something closes abandoned runs), at most one per kill.
    assert set(statuses) <= {"ok", "running", "interrupted"}, statuses
    assert statuses.get("running", 0) + statuses.get("interrupted", 0) <= len(KILL_POINTS)
    assert tasks_left == 0, "the final run clears every cycle's task list"
