"""The daemon's jobs as plain functions: the scheduler fires them, `forecaster run --once` calls them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from tenacity import Retrying

from forecaster import calendar
from forecaster.config import Settings
from forecaster.cycle import CycleContext, CycleOutcome, catch_up, close_abandoned_runs
from forecaster.daemon.leadership import Leadership
from forecaster.errors import CycleInterrupted, DatabaseUnavailable, NotInCharge, UserError, one_line
from forecaster.model.presets import get_preset
from forecaster.prices.sources import source_from_spec
from forecaster.prices.sources.retrying import RetryingSource
from forecaster.retries import StopRequested, with_backoff
from forecaster.store.database import opened_engine, upgrade

log = logging.getLogger(__name__)


@contextmanager
def opened_context(
    settings: Settings,
    *,
    role: str,
    stop: threading.Event | None = None,
    exclusive: bool = True,
    wait_for_database: bool = False,
) -> Iterator[tuple[CycleContext, Leadership]]:
    """The context of a command that writes, and its scheduler lock.

    Preset and source first, so bad settings fail before the database is touched. Then, with
    `exclusive`, the scheduler lock is taken or the command refused (on SQLite always: one
    writing process per file), before the migrations run. With `wait_for_database` (the
    daemon), a database that cannot be reached yet is retried with backoff. The lock is
    released and the engine's connections closed when the block ends."""
    preset = get_preset(settings.preset)
    stop = stop or threading.Event()
    source = RetryingSource(
        source_from_spec(settings.source, tickers=settings.tickers),
        retries=settings.fetch_retries,
        backoff_seconds=settings.fetch_backoff_seconds,
        stop=stop,
    )
    with opened_engine(settings.database) as engine:
        leadership = Leadership(engine, role=role)
        try:
            if exclusive or leadership.single_process:
                _when_reachable(lambda: leadership.acquire_or_refuse(), settings, stop, retry=wait_for_database)
            _when_reachable(lambda: upgrade(engine), settings, stop, retry=wait_for_database)
            yield (
                CycleContext(
                    engine=engine,
                    source=source,
                    tickers=settings.tickers,
                    preset=preset,
                    history_sessions=settings.history_sessions,
                    stop_event=stop,
                    in_charge=leadership.verify,
                    claim_size=settings.claim_size,
                    lease=timedelta(seconds=settings.lease_seconds),
                ),
                leadership,
            )
        finally:
            leadership.release()


def _database_retries(settings: Settings, stop: threading.Event) -> Retrying:
    """Retries while the database cannot be reached: FORECASTER_DATABASE_RETRIES times, waits from
    FORECASTER_DATABASE_BACKOFF_SECONDS doubling, one log line each."""

    def announce(error: BaseException, retry: int, seconds: float) -> None:
        reason = str(error) if isinstance(error, DatabaseUnavailable) else one_line(error)
        log.warning(
            "database unavailable (%s); retry %d of %d in %.0f s",
            reason,
            retry,
            settings.database_retries,
            seconds,
            extra={"event": "database_retry"},
        )

    return with_backoff(
        retries=settings.database_retries,
        first_delay=settings.database_backoff_seconds,
        stop=stop,
        retry_on=(DatabaseUnavailable, sa.exc.OperationalError),
        before_wait=announce,
    )


def _when_reachable(step: Callable[[], None], settings: Settings, stop: threading.Event, *, retry: bool) -> None:
    """Runs `step`; with `retry`, again while the database cannot be reached (a container
    started before its database). A stop request during a wait ends the command."""
    if not retry:
        step()
        return
    try:
        _database_retries(settings, stop)(step)
    except StopRequested as stopped:
        raise CycleInterrupted from stopped


def forecast_job(context: CycleContext, *, as_of: date | None = None) -> list[CycleOutcome]:
    """Catches up every session owed through `as_of` (default: the latest session whose close has
    passed), in order. The caller holds the scheduler lock."""
    if as_of is None:
        as_of = calendar.latest_completed_session(context.clock())
    close_abandoned_runs(context)
    return catch_up(context, as_of)


def forecast_job_as_scheduler(
    context: CycleContext, settings: Settings, leadership: Leadership, *, trigger: str
) -> None:
    """The daemon's forecast job: `forecast_job`, only while this process holds the scheduler
    lock (checked before it starts, and before each cycle), retried with exponential backoff
    while the database is unreachable. Work committed before an outage is kept; the retry skips it."""
    try:
        for attempt in _database_retries(settings, context.stop_event):
            with attempt:
                if not leadership.verify():
                    log.warning("forecast job (%s) skipped: this process is no longer the scheduler", trigger)
                    return
                log.info("forecast job started (%s)", trigger, extra={"event": "forecast_job", "trigger": trigger})
                forecast_job(context)
    except NotInCharge:
        log.warning("forecast job (%s) stopped: this process is no longer the scheduler", trigger)
    except (CycleInterrupted, StopRequested):
        log.info("forecast job (%s) stopped before its end; the next start completes it", trigger)
    except sa.exc.OperationalError as error:
        log.error("forecast job (%s) failed: database unavailable (%s)", trigger, one_line(error))
    except sa.exc.SQLAlchemyError as error:  # not an outage: retrying would not help
        log.error("forecast job (%s) failed: %s", trigger, one_line(error))


def report_job(context: CycleContext, settings: Settings) -> list[Path]:
    """Writes the markdown and HTML reports of the latest forecast session into the report
    directory; a database or disk that fails is one log line, not a traceback."""
    from forecaster.report import write_reports

    out_dir = Path(settings.report_dir)
    try:  # one read of the tables and one drawing of the charts for both formats
        paths = write_reports(
            context.engine, as_of=None, preset=context.preset.name, formats=("md", "html"), out_dir=out_dir
        )
    except (sa.exc.SQLAlchemyError, OSError, UserError) as error:
        log.error("report job failed: %s", one_line(error))
        return []
    log.info("report written: %s", ", ".join(str(p) for p in paths))
    return paths
