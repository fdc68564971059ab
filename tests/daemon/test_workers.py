"""Several `forecaster run` processes on one PostgreSQL share each cycle, and finish what a dead one left.

The watch list spans New York, London and crypto, each ticker forecast on its own calendar.
"""

from __future__ import annotations

import signal
import socket
from collections import Counter
from datetime import UTC, date, datetime

from forecaster.calendar import NYSE, trading_calendar
from forecaster.markets import resolve_calendar
from tests.support import consistency
from tests.support.processes import (
    forecaster_env,
    query_scalar,
    run_forecaster,
    start_forecaster,
    stop_forecaster,
    wait_for,
)
from tests.support.sessions import latest_closed_now

NYSE_CALENDAR = trading_calendar(NYSE)

TICKERS = [f"W{k:02d}" for k in range(45)] + [f"W{k}.L" for k in range(8)] + [f"W{k}-USD" for k in range(7)]
MARKETS = Counter(resolve_calendar(t, {}) for t in TICKERS)  # {calendar: its tickers}
SESSIONS = 10
BECAME_SCHEDULER = "daemon started as the scheduler"


def _owed(start: date) -> int:
    """Forecasts owed by the watch list from `start` (a NYSE session) through each market's latest
    closed session now: a session may close while the test runs."""
    owed = 0
    for calendar, tickers in MARKETS.items():
        market = trading_calendar(calendar)
        first = market.session_on_or_before(start)
        assert first is not None
        owed += tickers * market.count_sessions(first, latest_closed_now(calendar))
    return owed


def _holds_a_lease(url: str, process) -> bool:
    worker = f"{socket.gethostname()}:{process.pid}"
    return bool(query_scalar(url, f"SELECT count(*) FROM cycle_tasks WHERE status = 'leased' AND worker = '{worker}'"))


def test_three_workers_share_ten_sessions_and_finish_the_work_of_a_killed_worker_and_a_killed_scheduler(
    postgres_url, tmp_path
):
    latest = NYSE_CALENDAR.latest_closed_session(datetime.now(UTC))
    start = NYSE_CALENDAR.sessions_back(latest, SESSIONS + 1)  # forecast from here alone first: 10 sessions remain
    env = forecaster_env(
        postgres_url,
        source="synthetic",
        tickers=",".join(TICKERS),
        claim_size="3",
        lease_seconds="4",
        log_format="json",
    )
    first = run_forecaster("run", "--once", "--as-of", start.isoformat(), env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]

    logs = [tmp_path / f"worker{k}.log" for k in range(3)]
    workers = [start_forecaster("run", env=env, log_path=log) for log in logs]
    try:
        wait_for(lambda: any(BECAME_SCHEDULER in log.read_text() for log in logs), 60, "a scheduler")
        leader = next(k for k in range(3) if BECAME_SCHEDULER in logs[k].read_text())
        worker, survivor = [k for k in range(3) if k != leader]
        wait_for(lambda: _holds_a_lease(postgres_url, workers[worker]), 120, "a worker to hold a lease", interval=0.01)
        workers[worker].send_signal(signal.SIGKILL)
        wait_for(
            lambda: _holds_a_lease(postgres_url, workers[leader]), 120, "the scheduler to hold a lease", interval=0.01
        )
        workers[leader].send_signal(signal.SIGKILL)

        wait_for(
            lambda: query_scalar(postgres_url, "SELECT count(*) FROM predictions") == _owed(start),
            180,
            "every forecast",
        )
        wait_for(
            lambda: query_scalar(postgres_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0,
            60,
            "the runs to finish",
        )
    finally:
        for process in workers:
            if process.poll() is None and process is not workers[survivor]:
                process.kill()
        code = stop_forecaster(workers[survivor])

    assert code == 0
    expected = _owed(start)
    assert BECAME_SCHEDULER in logs[survivor].read_text(), "the survivor took over the scheduling"
    # Each (ticker, target session) exactly once: the key forbids duplicates, the count forbids gaps.
    assert query_scalar(postgres_url, "SELECT count(DISTINCT ticker || target_session) FROM predictions") == expected
    # Every forecast is counted by the run it belongs to, also those written into the dead scheduler's run.
    assert (
        query_scalar(
            postgres_url,
            "SELECT count(*) FROM runs r WHERE tickers_ok <> "
            "(SELECT count(*) FROM predictions p WHERE p.run_id = r.id)",
        )
        == 0
    )
    assert query_scalar(postgres_url, "SELECT sum(tickers_ok) FROM runs") == expected
    assert query_scalar(postgres_url, "SELECT count(*) FROM runs WHERE status NOT IN ('ok', 'interrupted')") == 0
    assert consistency.bookkeeping_problems(postgres_url, watch_list=MARKETS) == []
