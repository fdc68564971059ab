"""The daemon's process: APScheduler wiring, signals, the worker thread and the scheduler lock.

The jobs themselves live in `forecaster.daemon.jobs`, the schedules in `forecaster.daemon.schedules`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from forecaster.config import Settings
from forecaster.daemon import heartbeat
from forecaster.daemon.leadership import Leadership
from forecaster.daemon.schedules import cron_trigger, next_fire_time, previous_fire_time
from forecaster.errors import CycleInterrupted, one_line
from forecaster.signals import stop_on_signals

log = logging.getLogger(__name__)

#: How often the scheduler checks it still holds the lock, and another process tries to take it.
LEADERSHIP_POLL_SECONDS = 2.0
#: How long an idle worker waits before looking for tasks again, and one that hit an error.
WORKER_POLL_SECONDS = 1.0
WORKER_ERROR_PAUSE_SECONDS = 5

FORECAST_JOB_ID = "forecast"
REPORT_JOB_ID = "report"


def _log_job_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("job %s missed its %s run", event.job_id, event.scheduled_run_time)
    else:
        log.error("job %s failed: %s", event.job_id, event.exception, exc_info=event.exception)


def daemon_triggers(settings: Settings) -> tuple[CronTrigger, CronTrigger]:
    """The forecast and report triggers; parsed before anything else so a bad one changes nothing."""
    return (
        cron_trigger(settings.schedule, settings.timezone),
        cron_trigger(settings.report_schedule, settings.timezone, setting="report_schedule"),
    )


def _scheduler(
    settings: Settings,
    triggers: tuple[CronTrigger, CronTrigger],
    forecast: Callable[[str], object],
    report: Callable[[], object],
) -> BackgroundScheduler:
    """A started scheduler: the forecast job at once (the catch-up) and on its trigger, the report on its own."""
    forecast_trigger, report_trigger = triggers
    scheduler = BackgroundScheduler(
        timezone=settings.timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace_seconds},
    )
    scheduler.add_listener(_log_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    first = threading.Event()

    def forecast_now_or_on_trigger() -> None:
        if not first.is_set():
            first.set()
            forecast("catch-up on becoming the scheduler")
        else:
            fired = previous_fire_time(forecast_trigger, datetime.now(timezone.utc))
            forecast(f"the trigger at {fired.isoformat() if fired else 'unknown'}")

    scheduler.add_job(forecast_now_or_on_trigger, forecast_trigger, id=FORECAST_JOB_ID, next_run_time=datetime.now(timezone.utc))
    scheduler.add_job(report, report_trigger, id=REPORT_JOB_ID)
    scheduler.start()
    log.info(
        "daemon started as the scheduler: forecasts on %r, reports on %r (%s); next forecast after the catch-up: %s",
        settings.schedule, settings.report_schedule, settings.timezone,
        next_fire_time(forecast_trigger, datetime.now(timezone.utc)),
    )
    return scheduler


def _try_to_lead(leadership: Leadership, unreachable: list[str]) -> bool:
    """One attempt at the scheduler lock; a database that is down is logged once per outage."""
    try:
        acquired = leadership.try_acquire()
    except sa.exc.DBAPIError as error:
        if not unreachable:
            log.warning("database unavailable (%s); trying again every %.0f s", one_line(error), LEADERSHIP_POLL_SECONDS)
        unreachable[:] = [one_line(error)]
        return False
    if unreachable:
        log.info("database reachable again")
        unreachable.clear()
    return acquired


def serve(
    settings: Settings,
    triggers: tuple[CronTrigger, CronTrigger],
    *,
    forecast: Callable[[str], object],
    report: Callable[[], object],
    work: Callable[[], int],
    leadership: Leadership,
    stop: threading.Event,
) -> None:
    """Runs until SIGTERM or SIGINT. On PostgreSQL every process runs `work` (claim and train
    the cycles' tasks) in a worker thread; the one process that holds `leadership` also schedules
    `forecast` at once (the catch-up) and then on its trigger (it is passed what fired it), and
    `report` on the report schedule. The scheduler checks every few seconds that it still holds
    the lock and steps down when it does not (its database connection died); the others try to
    take it every few seconds, riding out database outages, so another takes over when the
    scheduler dies. On a signal, the job in flight sees `stop`, ends at its next ticker chunk,
    and this returns once it has."""

    def work_until_stopped() -> None:
        while not stop.is_set():
            try:
                if work() == 0:
                    stop.wait(WORKER_POLL_SECONDS)
            except CycleInterrupted:
                return
            except sa.exc.OperationalError as error:  # the database is away: expected, one line
                log.warning("worker: database unavailable (%s); retrying in %d s", one_line(error), WORKER_ERROR_PAUSE_SECONDS)
                stop.wait(WORKER_ERROR_PAUSE_SECONDS)
            except Exception:
                log.exception("worker: claim failed; retrying in %d s", WORKER_ERROR_PAUSE_SECONDS)
                stop.wait(WORKER_ERROR_PAUSE_SECONDS)

    with stop_on_signals(stop):
        # On SQLite (one writer, one process) the scheduler's own cycles do all the work.
        worker = threading.Thread(target=work_until_stopped, name="worker")
        if not leadership.single_process:
            worker.start()
        log.info("daemon running (pid %d); scheduler: %s", os.getpid(), "this process" if leadership.is_leader else "another process, for now")
        scheduler: BackgroundScheduler | None = None
        unreachable: list[str] = []
        try:
            while not stop.is_set():  # a timed wait keeps the main thread ready for signals
                if scheduler is None:
                    if _try_to_lead(leadership, unreachable):
                        scheduler = _scheduler(settings, triggers, forecast, report)
                elif not leadership.verify():
                    log.warning("stepping down as the scheduler; another process may take over")
                    scheduler.shutdown(wait=True)  # the job in flight stops at its next check
                    scheduler = None
                if settings.heartbeat_file:
                    heartbeat.beat(
                        settings.heartbeat_file, role="worker" if scheduler is None else "scheduler",
                        database=unreachable[0] if unreachable else "ok",
                    )
                stop.wait(LEADERSHIP_POLL_SECONDS)
        finally:
            stop.set()
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            if worker.is_alive():
                worker.join()
            leadership.release()
            log.info("daemon stopped")
