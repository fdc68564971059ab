"""The daemon's jobs as plain functions: the scheduler fires them, `forecaster run --once` calls them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from forecaster import calendar
from forecaster.config import Settings
from forecaster.worker import CycleInterrupted
from forecaster.cycle import CycleContext, CycleOutcome, catch_up
from forecaster.model.presets import get_preset
from forecaster.prices.sources import source_from_spec
from forecaster.prices.sources.retrying import RetryingSource
from forecaster.store import runs as run_store
from forecaster.store.database import opened_engine, upgrade

log = logging.getLogger(__name__)


@contextmanager
def opened_context(settings: Settings, *, stop: threading.Event | None = None) -> Iterator[CycleContext]:
    """Preset, source with retries, then the engine (migrated to head): bad settings fail before
    the database is touched. The engine's connections are closed when the block ends."""
    preset = get_preset(settings.preset)
    stop = stop or threading.Event()
    source = RetryingSource(
        source_from_spec(settings.source),
        retries=settings.fetch_retries,
        backoff_seconds=settings.fetch_backoff_seconds,
        stop=stop,
    )
    with opened_engine(settings.database_url) as engine:
        upgrade(engine)
        yield CycleContext(
            engine=engine, source=source, tickers=settings.tickers, preset=preset,
            history_sessions=settings.history_sessions, stop_event=stop,
            claim_size=max(settings.claim_size, 1), lease=timedelta(seconds=max(settings.lease_seconds, 1)),
        )


def close_abandoned_runs(context: CycleContext) -> None:
    """Runs left 'running' by a process that died become 'interrupted'. Only the scheduler
    starts daily runs, so at its job's start none of them is live; a backfill still running
    in another process overwrites this when it finishes."""
    now = context.clock()
    with context.engine.begin() as connection:
        closed = run_store.close_abandoned_runs(connection=connection, started_before=now, now=now)
    if closed:
        log.info("marked %d run(s) left running by a stopped process as interrupted", closed)


def forecast_job_retrying_database(context: CycleContext, settings: Settings, stop: threading.Event) -> list[CycleOutcome]:
    """The daemon's forecast job: `forecast_job`, retried with exponential backoff while the
    database is unreachable. Work committed before the outage is kept; the retry skips it."""
    attempt = 0
    while True:
        try:
            return forecast_job(context)
        except sa.exc.OperationalError as error:
            if attempt == settings.database_retries:
                raise
            delay = settings.database_backoff_seconds * 2**attempt
            attempt += 1
            reason = str(error.orig or error).strip().splitlines()[0]
            log.warning(
                "database unavailable (%s); retry %d of %d in %.0f s", reason, attempt, settings.database_retries, delay,
                extra={"event": "database_retry"},
            )
            if stop.wait(delay):
                raise CycleInterrupted from error


def forecast_job(context: CycleContext, *, as_of: date | None = None) -> list[CycleOutcome]:
    """Catches up every session missed since the last forecast, through `as_of` (default:
    the latest session whose close has passed), in order."""
    if as_of is None:
        as_of = calendar.latest_completed_session(context.clock())
    close_abandoned_runs(context)
    return catch_up(context, as_of)



def report_job(context: CycleContext, settings: Settings) -> list[Path]:
    """Writes the markdown and HTML reports of the latest forecast session into the report directory."""
    from forecaster.report.writer import write_report

    out_dir = Path(settings.report_dir)
    paths = [write_report(context.engine, as_of=None, preset=context.preset.name, fmt=fmt, out_dir=out_dir) for fmt in ("md", "html")]
    log.info("report written: %s", ", ".join(str(p) for p in paths))
    return paths
