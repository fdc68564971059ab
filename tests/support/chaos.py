"""Random kills of the daemon's catch-up path, against an uninterrupted run of the same catch-up.

The scenario is the one that lost forecasts before: a watch list backfilled for a while, then
grown by new tickers, then caught up over many sessions by `forecaster run --once` with a
claim size small enough that every session is split over several claims. One copy of the
database is caught up without interruption (the reference). Another is caught up by starting
`run --once` again and again, each start killed (SIGKILL or SIGTERM, chosen at random) at a
random moment, then once more to the end. Afterwards the two must hold exactly the same
prices, forecasts, model states and losses (all columns but run ids and timestamps), every
run's counts must add up, no run may be left running and no task left in the queue.

Used by tests/e2e/test_chaos.py (a short version, in CI) and benchmarks/chaos.py (a long one).
"""

from __future__ import annotations

import functools
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from forecaster.calendar import trading_calendar
from forecaster.markets import resolve_calendar
from tests.support import consistency
from tests.support.processes import forecaster_env, run_forecaster, start_forecaster
from tests.support.tables import product

#: A watch list over four markets: New York, Tokyo, London and crypto (24/7, weekends included).
OLD = [f"K{k:02d}" for k in range(26)] + [f"{k}.T" for k in range(1301, 1306)] + [f"K{k}.L" for k in range(5)]
OLD += [f"K{k}-USD" for k in range(4)]
NEW = [f"N{k:02d}" for k in range(4)] + ["1401.T", "1402.T", "N0-USD", "N1-USD"]
BACKFILL = ("backfill", "--start", "2025-03-24", "--end", "2025-03-31")
CATCH_UP = (
    "run",
    "--once",
    "--as-of",
    "2025-04-15",
)  # 11 sessions (15 crypto days), 48 tickers on four markets, claims of 5
SETTINGS = {"source": "synthetic:7", "claim_size": "5", "lease_seconds": "30", "fetch_retries": "0"}


@dataclass
class Kill:
    number: int
    signal: str
    after: str  # where the delay was counted from
    delay: float
    forecasts: int  # after the kill
    exit_code: int | None  # None: the process had already finished


@dataclass
class ChaosRun:
    seed: int
    kills: list[Kill] = field(default_factory=list)
    completed_early: int = 0  # starts that finished before their kill landed

    def landings(self) -> str:
        return "\n".join(
            f"kill {k.number:2d}: {k.signal} {k.delay:.2f} s after {k.after} -> {k.forecasts} forecasts, exit {k.exit_code}"
            for k in self.kills
        )


def scalar(url: str, sql: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql)).scalar() or 0
    except sa.exc.DBAPIError:
        return 0  # not migrated yet, or locked for a moment
    finally:
        engine.dispose()


def prepare(url: str) -> None:
    """The starting point: the OLD tickers backfilled for six sessions."""
    result = run_forecaster(*BACKFILL, env=forecaster_env(url, tickers=",".join(OLD), **SETTINGS), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def catch_up_env(url: str) -> dict[str, str]:
    return forecaster_env(url, tickers=",".join(OLD + NEW), **SETTINGS)


def run_to_the_end(url: str) -> None:
    result = run_forecaster(*CATCH_UP, env=catch_up_env(url), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def kill_again_and_again(url: str, log_dir: Path, *, kills: int, seed: int, max_delay: float = 1.5) -> ChaosRun:
    """Starts the catch-up `kills` times, killing each start at a random moment, then checks
    after every kill that no ticker is half written."""
    rng = random.Random(seed)
    chaos = ChaosRun(seed)
    for number in range(1, kills + 1):
        runs_before = scalar(url, "SELECT max(id) FROM runs")
        process = start_forecaster(*CATCH_UP, env=catch_up_env(url), log_path=log_dir / f"kill{number}.log")
        started = time.monotonic()
        try:
            if rng.random() < 0.2:  # now and then early: imports, migrations, closing runs, enrolling, fetching
                after, delay = "the start", rng.uniform(0.5, 3.0)
                time.sleep(max(0.0, started + delay - time.monotonic()))
            else:  # mostly inside the walk: claims, training, writes, runs finishing
                after, delay = "the first run", rng.uniform(0.0, max_delay)
                _wait(functools.partial(_first_run_started, url, runs_before, process), 120)
                time.sleep(delay)
            chosen = rng.choice([signal.SIGKILL, signal.SIGTERM])
            code = None
            if process.poll() is None:
                process.send_signal(chosen)
                code = process.wait(timeout=120)
            else:
                chaos.completed_early += 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        chaos.kills.append(
            Kill(number, chosen.name, after, delay, scalar(url, "SELECT count(*) FROM predictions"), code)
        )
        problems = consistency.half_written(url)
        assert not problems, f"{problems} after\n{chaos.landings()}"
    return chaos


def _first_run_started(url: str, runs_before: int, process: subprocess.Popen[bytes]) -> bool:
    """A run newer than `runs_before` exists, or the process has already ended."""
    return scalar(url, "SELECT max(id) FROM runs") > runs_before or process.poll() is not None


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the catch-up did not start its first run"
        time.sleep(0.01)


def unforecast_sessions(url: str) -> dict[str, int]:
    """{ticker: how many sessions of its own calendar it lacks a forecast from} after the catch-up:
    OLD tickers from the backfill's start, NEW ones from their calendar's first session after the
    backfill's end, through the catch-up's --as-of; crypto every day, weekends included."""
    start, end, through = (date.fromisoformat(d) for d in (BACKFILL[2], BACKFILL[4], CATCH_UP[3]))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            made = Counter(t for (t,) in connection.execute(sa.text("SELECT ticker FROM predictions")))
    finally:
        engine.dispose()
    missing = {}
    for ticker in OLD + NEW:
        market = trading_calendar(resolve_calendar(ticker, {}))
        first = start if ticker in OLD else market.next_session(end)
        if (lacking := market.count_sessions(first, through) - made[ticker]) != 0:
            missing[ticker] = lacking
    return missing


def bookkeeping_problems(url: str) -> list[str]:
    """Runs that do not add up (for this scenario's watch list, per market), runs still running, tasks left over."""
    return consistency.bookkeeping_problems(url, watch_list=Counter(resolve_calendar(t, {}) for t in OLD + NEW))


def same_tables(reference_url: str, chaos_url: str) -> list[str]:
    """The product tables that differ between the two databases (bookkeeping columns left out)."""
    reference, chaos = (sa.create_engine(url) for url in (reference_url, chaos_url))
    try:
        left, right = product(reference), product(chaos)
    finally:
        reference.dispose()
        chaos.dispose()
    return [f"{table}: {len(left[table])} rows vs {len(right[table])}" for table in left if left[table] != right[table]]


def copy_sqlite(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
