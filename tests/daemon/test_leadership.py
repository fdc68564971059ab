"""One scheduler per database: the scheduler lock in one process, then three daemons on one PostgreSQL.

In one process, on the shared server: a second Leadership is refused with the holder's name,
takes over the moment the holder lets go or stops renewing, and a holder that lost the lock
writes nothing more as the scheduler (its transactions are fenced).

Three real `forecaster run` processes start on a private PostgreSQL server with a trigger
every three seconds; one becomes the scheduler. It is then frozen (SIGSTOP: it stops renewing
its lease) while the server is restarted (`pg_ctl restart -m fast`: every connection is cut),
so another daemon must take over once the lease runs out and fire the triggers. When the old
scheduler wakes up (SIGCONT) its own scheduler still has the triggers: it must find its lease
taken, skip them and step down. No daemon may exit, and no trigger may run twice: each trigger
time appears in exactly one log as a job that ran. Afterwards every forecast exists once and
every run adds up. The watch list spans New York, Tokyo and crypto: each trigger catches up
every market. The same runs again through a PgBouncer in transaction pooling mode (each
transaction on whichever of four server connections is free), which is also restarted first.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from forecaster.context import CycleContext
from forecaster.daemon.leadership import Leadership
from forecaster.errors import NotInCharge, UserError
from forecaster.model.presets import PRESETS
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.store.schema import runs
from tests.support import consistency
from tests.support.processes import forecaster_env, query_scalar, start_forecaster, wait_for

TICKERS = "AAA,BBB,7203.T,BTC-USD"
TRIGGER = re.compile(r"forecast job started \(the trigger at (?P<time>[^)]+)\)")
BECAME_SCHEDULER = "daemon started as the scheduler"


def _messages(log: Path) -> list[str]:
    return [json.loads(line)["message"] for line in log.read_text().splitlines() if line.startswith("{")]


def _triggers_run(*logs: Path) -> list[str]:
    return [match["time"] for log in logs for message in _messages(log) if (match := TRIGGER.search(message))]


def _became_scheduler(log: Path) -> int:
    return sum(BECAME_SCHEDULER in message for message in _messages(log))


def _scheduler_now(logs: list[Path]) -> int:
    """The daemon whose last word on it is that it became the scheduler."""

    def last_word(log: Path) -> str:
        said = [m for m in _messages(log) if BECAME_SCHEDULER in m or "stepping down" in m]
        return said[-1] if said else ""

    (current,) = (k for k, log in enumerate(logs) if BECAME_SCHEDULER in last_word(log))
    return current


def test_a_second_process_is_refused_naming_the_holder_and_takes_over_as_soon_as_it_lets_go(migrated_postgres):
    holder = Leadership(migrated_postgres, role="forecaster backfill")
    other = Leadership(migrated_postgres, role="forecaster run --once")
    try:
        holder.acquire_or_refuse()
        with pytest.raises(UserError, match=r"\(forecaster backfill on .* pid \d+, its lease renewed 0 s ago\) holds"):
            other.acquire_or_refuse()
        assert holder.verify() and not other.is_leader
        holder.release()
        assert other.try_acquire() and other.epoch == 2
        assert not holder.verify()
    finally:
        holder.release()
        other.release()


HOLDER = """
import sys, time
from forecaster.daemon.leadership import Leadership
from forecaster.store.database import make_engine
assert Leadership(make_engine(sys.argv[1]), role="forecaster backfill").try_acquire()
print("holding", flush=True)
time.sleep(600)
"""


def test_a_holder_killed_on_this_host_is_taken_over_at_once_not_after_its_lease(
    migrated_postgres, postgres_url, caplog
):
    """A `run --once` run again right after a crash is not refused for the lease's 15 s."""
    caplog.set_level(logging.INFO, logger="forecaster.daemon.leadership")
    with subprocess.Popen([sys.executable, "-c", HOLDER, postgres_url], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        holder.kill()
    successor = Leadership(migrated_postgres, role="forecaster run --once")
    try:
        assert successor.try_acquire() and successor.epoch == 2
        assert "took the scheduler lock over from forecaster backfill on" in caplog.text
    finally:
        successor.release()


def test_a_holder_that_stops_renewing_loses_the_lock_and_its_scheduler_writes_are_refused(migrated_postgres, caplog):
    """A lease of half a second against renewals every three stands in for a frozen holder."""
    stalled = Leadership(migrated_postgres, role="forecaster run", lease_seconds=0.5)
    successor = Leadership(migrated_postgres, role="forecaster run")
    context = CycleContext(
        engine=migrated_postgres, source=SyntheticSource(), tickers=["AAA"], preset=PRESETS["default"], lock=stalled
    )
    try:
        assert stalled.try_acquire()
        wait_for(successor.try_acquire, 30, "the successor to take the expired lease")

        with pytest.raises(NotInCharge), context.scheduler_transaction() as connection:
            connection.execute(sa.text("DELETE FROM runs"))  # never reached: the fence refuses first
        wait_for(lambda: not stalled.verify(), 30, "the stalled holder to find its lease taken")
        assert "lost the scheduler lock (another process took its lease over)" in caplog.text
        with migrated_postgres.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 0
        context.lock = successor
        with context.scheduler_transaction() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 0
    finally:
        stalled.release()
        successor.release()


@pytest.mark.parametrize("route", ["direct", "pgbouncer"])
def test_three_daemons_keep_one_scheduler_through_restarts_and_no_trigger_runs_twice(
    route, private_postgres, request, tmp_path
):
    pooler = request.getfixturevalue("pgbouncer") if route == "pgbouncer" else None
    url = private_postgres.url if pooler is None else pooler.url
    env = forecaster_env(
        url,
        source="synthetic",
        tickers=TICKERS,
        schedule="*/3 * * * * *",
        report_schedule="0 0 1 1 *",
        log_format="json",
        database_backoff_seconds="1",
        report_dir=str(tmp_path / "reports"),
    )
    logs = [tmp_path / f"daemon{k}.log" for k in range(3)]
    daemons = [start_forecaster("run", env=env, log_path=log) for log in logs]
    try:
        wait_for(lambda: len(_triggers_run(*logs)) >= 2, 120, "two triggers before the restart")
        if pooler is not None:
            pooler.restart()  # every client connection is cut; the lease is a row, so it stays
            after = len(_triggers_run(*logs))
            wait_for(lambda: len(_triggers_run(*logs)) >= after + 2, 120, "two triggers after PgBouncer's restart")
        first = _scheduler_now(logs)
        others = [logs[k] for k in range(3) if k != first]
        daemons[first].send_signal(signal.SIGSTOP)

        private_postgres.restart()
        wait_for(lambda: len(_triggers_run(*others)) >= 2, 120, "another daemon to take over and fire two triggers")
        daemons[first].send_signal(signal.SIGCONT)
        wait_for(
            lambda: any("stepping down" in message for message in _messages(logs[first])),
            60,
            "the old scheduler to step down",
        )
        after = len(_triggers_run(*logs))
        wait_for(lambda: len(_triggers_run(*logs)) >= after + 2, 60, "two more triggers")
        alive = [daemon.poll() is None for daemon in daemons]
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGCONT)
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        codes = [daemon.wait(timeout=60) for daemon in daemons]

    assert alive == [True] * 3, "no daemon exits on the restart"
    assert codes == [0] * 3
    repeated = [time for time, count in Counter(_triggers_run(*logs)).items() if count > 1]
    assert not repeated, f"triggers run twice: {repeated}"
    assert sum(_became_scheduler(log) for log in others) >= 1, "another daemon took over"
    url = private_postgres.url  # the checks read the server directly
    assert consistency.bookkeeping_problems(url, watch_list={"XNYS": 2, "XTKS": 1, "24/7": 1}) == []
    assert (
        query_scalar(url, "SELECT count(*) FROM predictions")
        == query_scalar(url, "SELECT count(DISTINCT ticker || as_of) FROM predictions")
        == 4
    )
