"""The daemon's jobs as plain functions: the scheduler fires them (forecaster.daemon.scheduler).

Through the notifier (forecaster.notify) they send the report's briefing and its alerts, and an
alert for each run that ends with failed tickers and each job that fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from forecaster.context import CycleContext
from forecaster.cycle import CycleOutcome
from forecaster.errors import CycleInterrupted, NotInCharge, UserError, one_line
from forecaster.notify import Notifier
from forecaster.retries import Backoff, StopRequested, database_retrying
from forecaster.store import runs as run_store
from forecaster.walks import catch_up_now

if TYPE_CHECKING:
    from forecaster.report.writer import WrittenReport

log = logging.getLogger(__name__)

#: The failed tickers a run's alert names; the rest are counted.
ALERT_TICKERS = 5


def forecast_job_as_scheduler(
    context: CycleContext,
    database_backoff: Backoff,
    *,
    trigger: str,
    notifier: Notifier,
    calendars: list[str] | None = None,
) -> None:
    """The daemon's forecast job: the catch-up (forecaster.walks.catch_up_now) of `calendars`' markets
    (None: every market of the watch list), only while this
    process holds the scheduler lock (checked before it starts, and before each cycle), retried
    with `database_backoff` while the database is unreachable. Work committed before an outage is
    kept; the retry skips it. Each run that ends with failed tickers is one alert, and so is a job
    that fails."""
    markets = ", ".join(calendars) if calendars else "every market"

    def failed(cause: str) -> None:
        log.error("forecast job (%s) failed: %s", trigger, cause)
        notifier.alert(f"forecast job of {markets} ({trigger}) failed: {cause}")

    try:
        for attempt in database_retrying(database_backoff, context.stop_event):
            with attempt:
                if not context.in_charge():
                    log.warning("forecast job (%s) skipped: this process is no longer the scheduler", trigger)
                    return
                if attempt.retry_state.attempt_number == 1:  # a retry is said by database_retrying
                    log.info("forecast job started (%s)", trigger, extra={"event": "forecast_job", "trigger": trigger})
                catch_up_now(
                    context, calendars=calendars, on_cycle=lambda outcome: _alert_failed(context, notifier, outcome)
                )
    except NotInCharge:
        log.warning("forecast job (%s) stopped: this process is no longer the scheduler", trigger)
    except (CycleInterrupted, StopRequested):
        log.info("forecast job (%s) stopped before its end; the next start completes it", trigger)
    except sa.exc.OperationalError as error:
        failed(f"database unavailable ({one_line(error)})")
    except sa.exc.SQLAlchemyError as error:  # not an outage: retrying would not help
        failed(one_line(error))
    except Exception as error:  # the scheduler logs it with its traceback
        notifier.alert(f"forecast job of {markets} ({trigger}) failed: {one_line(error)}")
        raise


def _alert_failed(context: CycleContext, notifier: Notifier, outcome: CycleOutcome) -> None:
    """One alert for a run that ended failed or partial: its market, session, counts, the first
    failed tickers and the first one's cause."""
    if outcome.status not in ("failed", "partial") or not outcome.tickers_failed:
        return
    tried = outcome.tickers_ok + outcome.tickers_failed
    line = (
        f"{outcome.calendar} session {outcome.as_of}: run {outcome.run_id} {outcome.status}, "
        f"{outcome.tickers_failed} of {tried} ticker(s) failed"
    )
    try:
        with context.engine.connect() as connection:
            failures = run_store.run_failures_of(outcome.run_id, connection=connection)
    except sa.exc.SQLAlchemyError as error:  # the alert goes out without the names
        log.warning("run %d: its failed tickers could not be read for the alert (%s)", outcome.run_id, one_line(error))
        failures = []
    if failures:
        named = ", ".join(f.ticker for f in failures[:ALERT_TICKERS])
        more = f" and {len(failures) - ALERT_TICKERS} more" if len(failures) > ALERT_TICKERS else ""
        first = failures[0]
        line += f": {named}{more} ({first.ticker} at {first.stage}: {first.reason})"
    notifier.alert(line)


def report_job(
    engine: sa.Engine,
    preset: str,
    out_dir: Path,
    *,
    delisted_after: int,
    notifier: Notifier,
    named: Sequence[str] = (),
) -> list[Path]:
    """Writes the markdown and HTML reports of the latest forecast session into `out_dir` (charting the
    `named` tickers besides those chart_groups picks), then sends
    the briefing with the HTML report attached, and each of the report's alerts (coverage drifting,
    ...) on its own; a database or disk that fails is one log line and one alert, not a traceback."""
    from forecaster.report.writer import write_briefed_reports

    try:  # one read of the tables and one drawing of the charts for both formats
        written = write_briefed_reports(
            engine,
            as_of=None,
            preset=preset,
            formats=("md", "html"),
            out_dir=out_dir,
            delisted_after=delisted_after,
            named=named,
        )
    except (sa.exc.SQLAlchemyError, OSError, UserError) as error:
        log.error("report job failed: %s", one_line(error))
        notifier.alert(f"the daily report could not be written: {one_line(error)}")
        return []
    log.info("report written: %s", ", ".join(str(p) for p in written.paths))
    send_report(notifier, written)
    return written.paths


def send_report(notifier: Notifier, written: WrittenReport) -> None:
    """The briefing, with the HTML report attached (a mail carries the whole report), then each of the
    report's alerts on its own."""
    html = next((path for path in written.paths if path.suffix == ".html"), None)
    notifier.briefing(written.title, written.briefing, attachment=html)
    for line in written.alerts:
        notifier.alert(line)
