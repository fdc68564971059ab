"""APScheduler wiring: the forecast job at once and on its trigger, the report on its own.

The jobs themselves live in `forecaster.daemon.jobs`, the schedules in `forecaster.daemon.schedules`,
the process that runs a scheduler while it holds the lock in `forecaster.daemon.process`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from forecaster.config import Settings
from forecaster.daemon.schedules import cron_trigger, next_fire_time, previous_fire_time

log = logging.getLogger(__name__)

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


def started_scheduler(
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
            fired = previous_fire_time(forecast_trigger, datetime.now(UTC))
            forecast(f"the trigger at {fired.isoformat() if fired else 'unknown'}")

    scheduler.add_job(forecast_now_or_on_trigger, forecast_trigger, id=FORECAST_JOB_ID, next_run_time=datetime.now(UTC))
    scheduler.add_job(report, report_trigger, id=REPORT_JOB_ID)
    scheduler.start()
    log.info(
        "daemon started as the scheduler: forecasts on %r, reports on %r (%s); next forecast after the catch-up: %s",
        settings.schedule,
        settings.report_schedule,
        settings.timezone,
        next_fire_time(forecast_trigger, datetime.now(UTC)),
    )
    return scheduler
