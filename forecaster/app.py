"""The composition root: from the settings to a running `run`, `run --once` or `backfill`.

This is the one module that turns Settings into the objects the rest of the package takes:
the engine, the price source (with its retries), the preset, the scheduler lock and the
CycleContext that carries them; it also owns the process-level wiring (signals, waiting for a
database that is not up yet). Everything below receives those objects, never the settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from forecaster import cycle, walks, worker
from forecaster.config import Settings
from forecaster.context import CycleContext, utc_now
from forecaster.cycle import CycleOutcome
from forecaster.daemon.jobs import forecast_job_as_scheduler, report_job
from forecaster.daemon.leadership import Leadership
from forecaster.daemon.metrics import serve_metrics
from forecaster.daemon.overdue import OverdueWatch
from forecaster.daemon.process import serve
from forecaster.daemon.scheduler import Schedule
from forecaster.errors import CycleInterrupted
from forecaster.model.presets import get_preset
from forecaster.notify import Notifier
from forecaster.prices.sources import source_from_spec
from forecaster.prices.sources.retrying import RetryingSource
from forecaster.retries import Backoff, StopRequested, database_retrying
from forecaster.signals import stop_on_signals
from forecaster.store.database import opened_engine, upgrade
from forecaster.store.retention import Retention


@contextmanager
def opened_context(
    settings: Settings,
    *,
    role: str,
    stop: threading.Event,
    exclusive: bool = True,
    wait_for_database: bool = False,
) -> Iterator[tuple[CycleContext, Leadership]]:
    """The context of a command that writes, and its scheduler lock.

    Preset and source first, so bad settings fail before the database is touched. Then, with
    `exclusive`, the scheduler lock is taken or the command refused: on SQLite always (one
    writing process per file) and before the migrations run; on PostgreSQL after them, since
    the lock is a row of a table they make. With `wait_for_database` (the
    daemon), a database that cannot be reached yet is retried with backoff. The lock is
    released and the engine's connections closed when the block ends."""
    preset = get_preset(settings.preset)
    source = RetryingSource(
        source_from_spec(
            settings.source,
            tickers=settings.tickers,
            calendar_of=settings.calendar_of,
            batch_size=settings.fetch_batch_size,
        ),
        backoff=Backoff(settings.fetch_retries, settings.fetch_backoff_seconds),
        stop=stop,
    )
    database_backoff = Backoff(settings.database_retries, settings.database_backoff_seconds)
    with opened_engine(settings.database) as engine:
        leadership = Leadership(engine, role=role)
        try:
            if leadership.single_process:
                _when_reachable(leadership.acquire_or_refuse, database_backoff, stop, retry=wait_for_database)
            _when_reachable(lambda: upgrade(engine), database_backoff, stop, retry=wait_for_database)
            if exclusive and not leadership.single_process:  # the lease is a row of a migrated table
                _when_reachable(leadership.acquire_or_refuse, database_backoff, stop, retry=wait_for_database)
            yield (
                CycleContext(
                    engine=engine,
                    source=source,
                    tickers=settings.tickers,
                    preset=preset,
                    history_sessions=settings.history_sessions,
                    calendars=settings.calendars,
                    settle_minutes=settings.settle_minutes,
                    gap_wait_sessions=settings.gap_wait_sessions,
                    overlap_sessions=settings.overlap_sessions,
                    jump_threshold=settings.jump_threshold,
                    claim_size=settings.claim_size,
                    retention=Retention(states=settings.keep_states, loss_curves=settings.keep_loss_curves),
                    lease=timedelta(seconds=settings.lease_seconds),
                    stop_event=stop,
                    lock=leadership,
                ),
                leadership,
            )
        finally:
            leadership.release()


def _when_reachable(step: Callable[[], None], backoff: Backoff, stop: threading.Event, *, retry: bool) -> None:
    """Runs `step`; with `retry`, again while the database cannot be reached (a container
    started before its database). A stop request during a wait ends the command."""
    if not retry:
        step()
        return
    try:
        database_retrying(backoff, stop)(step)
    except StopRequested as stopped:
        raise CycleInterrupted from stopped


def run_once(settings: Settings, *, through: date | None) -> list[CycleOutcome]:
    """`forecaster run --once`: catch up every session owed through `through` (default: each market's
    latest session whose close has passed), then return. A `through` whose session has not closed
    on some market is refused (UserError). A stop request raises CycleInterrupted."""
    Schedule.from_settings(settings)  # a bad schedule is refused here too, before any work
    if through is not None:
        _refuse_the_future(settings, through, "--as-of")
    stop = threading.Event()
    with (
        stop_on_signals(stop),
        opened_context(settings, role="forecaster run --once", stop=stop) as (context, _),
    ):
        return walks.catch_up_now(context, through=through)


def run_backfill(
    settings: Settings, start: date, end: date, *, on_cycle: Callable[[CycleOutcome], None] | None = None
) -> list[CycleOutcome]:
    """`forecaster backfill`: one cycle for every session of each market from `start` to `end`; an
    `end` whose session has not closed on some market is refused (UserError)."""
    _refuse_the_future(settings, end, "--end")
    stop = threading.Event()
    with stop_on_signals(stop), opened_context(settings, role="forecaster backfill", stop=stop) as (context, _):
        cycle.close_abandoned_runs(context)
        return walks.backfill(context, start, end, on_cycle=on_cycle)


def _refuse_the_future(settings: Settings, day: date, flag: str) -> None:
    walks.refuse_the_future(
        day,
        flag,
        calendars=settings.markets.values(),
        settle=settings.settle,
        now=utc_now(),
    )


def run_daemon(settings: Settings) -> None:
    """`forecaster run`: the daemon, until SIGTERM or SIGINT (see forecaster.daemon.process.serve).
    Its notifications go out from the scheduler's jobs only, so one daemon of several sends them."""
    schedule = Schedule.from_settings(settings)
    stop = threading.Event()
    database_backoff = Backoff(settings.database_retries, settings.database_backoff_seconds)
    with (
        stop_on_signals(stop),
        # A URL apprise cannot send to is refused here, before the database is touched.
        Notifier([url.get_secret_value() for url in settings.notify_urls]) as notifier,
        opened_context(settings, role="forecaster run", stop=stop, exclusive=False, wait_for_database=True) as (
            context,
            leadership,
        ),
    ):
        if settings.metrics_port is not None:
            serve_metrics(settings.metrics_port, context.engine, settings, leadership)
        serve(
            schedule,
            forecast=lambda trigger, calendars: forecast_job_as_scheduler(
                context, database_backoff, trigger=trigger, calendars=calendars, notifier=notifier
            ),
            report=lambda: report_job(
                context.engine,
                context.preset.name,
                Path(settings.report_dir),
                delisted_after=settings.delisted_after_sessions,
                notifier=notifier,
                named=settings.report_charts,
            ),
            watch=OverdueWatch(context.engine, settings, notifier).check if settings.notify_urls else None,
            work=lambda: worker.work(context),
            leadership=leadership,
            heartbeat_file=settings.heartbeat_file,
            stop=stop,
        )
