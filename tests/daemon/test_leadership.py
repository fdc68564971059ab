"""One scheduler per database, through a server restart: three daemons on one PostgreSQL.

Three real `forecaster run` processes start on a private PostgreSQL server with a trigger
every three seconds; one becomes the scheduler. It is then frozen (SIGSTOP) while the server
is restarted (`pg_ctl restart -m fast`: every connection, and with it the scheduler lock, is
cut), so another daemon must take over and fire the triggers. When the old scheduler wakes
up (SIGCONT) its own scheduler still has the triggers: it must find its lock gone, skip them
and step down. No daemon may exit, and no trigger may run twice: each trigger time appears in
exactly one log as a job that ran. Afterwards every forecast exists once and every run adds up.
The watch list spans New York, Tokyo and crypto: each trigger catches up every market.
"""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from pathlib import Path

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


def test_three_daemons_keep_one_scheduler_through_a_server_restart_and_no_trigger_runs_twice(
    private_postgres, tmp_path
):
    url = private_postgres.url
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
        first = next(k for k in range(3) if _became_scheduler(logs[k]))
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
    assert consistency.bookkeeping_problems(url, watch_list={"XNYS": 2, "XTKS": 1, "24/7": 1}) == []
    assert (
        query_scalar(url, "SELECT count(*) FROM predictions")
        == query_scalar(url, "SELECT count(DISTINCT ticker || as_of) FROM predictions")
        == 4
    )
