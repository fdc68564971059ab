"""The daemon's jobs as plain functions: the scheduler fires them (forecaster.daemon.scheduler)."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa

from forecaster.context import CycleContext
from forecaster.errors import CycleInterrupted, NotInCharge, UserError, one_line
from forecaster.retries import Backoff, StopRequested, database_retrying
from forecaster.walks import catch_up_now

log = logging.getLogger(__name__)


def forecast_job_as_scheduler(
    context: CycleContext, database_backoff: Backoff, *, trigger: str, calendars: list[str] | None = None
) -> None:
    """The daemon's forecast job: the catch-up (forecaster.walks.catch_up_now) of `calendars`' markets
    (None: every market of the watch list), only while this
    process holds the scheduler lock (checked before it starts, and before each cycle), retried
    with `database_backoff` while the database is unreachable. Work committed before an outage is
    kept; the retry skips it."""
    try:
        for attempt in database_retrying(database_backoff, context.stop_event):
            with attempt:
                if not context.in_charge():
                    log.warning("forecast job (%s) skipped: this process is no longer the scheduler", trigger)
                    return
                if attempt.retry_state.attempt_number == 1:  # a retry is said by database_retrying
                    log.info("forecast job started (%s)", trigger, extra={"event": "forecast_job", "trigger": trigger})
                catch_up_now(context, calendars=calendars)
    except NotInCharge:
        log.warning("forecast job (%s) stopped: this process is no longer the scheduler", trigger)
    except (CycleInterrupted, StopRequested):
        log.info("forecast job (%s) stopped before its end; the next start completes it", trigger)
    except sa.exc.OperationalError as error:
        log.error("forecast job (%s) failed: database unavailable (%s)", trigger, one_line(error))
    except sa.exc.SQLAlchemyError as error:  # not an outage: retrying would not help
        log.error("forecast job (%s) failed: %s", trigger, one_line(error))


def report_job(engine: sa.Engine, preset: str, out_dir: Path, *, delisted_after: int) -> list[Path]:
    """Writes the markdown and HTML reports of the latest forecast session into `out_dir`; a
    database or disk that fails is one log line, not a traceback."""
    from forecaster.report import write_reports

    try:  # one read of the tables and one drawing of the charts for both formats
        paths = write_reports(
            engine, as_of=None, preset=preset, formats=("md", "html"), out_dir=out_dir, delisted_after=delisted_after
        )
    except (sa.exc.SQLAlchemyError, OSError, UserError) as error:
        log.error("report job failed: %s", one_line(error))
        return []
    log.info("report written: %s", ", ".join(str(p) for p in paths))
    return paths
