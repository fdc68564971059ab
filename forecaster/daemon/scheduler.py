"""APScheduler wiring: the forecast job at once and on its trigger, the report on its own.

The jobs themselves live in `forecaster.daemon.jobs`, the schedules in `forecaster.daemon.schedules`,
the process that runs a scheduler while it holds the lock in `forecaster.daemon.process`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Schedule:
    """When the daemon forecasts and reports: both triggers, parsed before anything else so a bad
    one changes nothing, with what APScheduler's job defaults need."""

    forecast: CronTrigger
    report: CronTrigger
    forecast_expression: str
    report_expression: str
    timezone: str
    misfire_grace_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        return cls(
            forecast=cron_trigger(settings.schedule, settings.timezone),
            report=cron_trigger(settings.report_schedule, settings.timezone, setting="report_schedule"),
            forecast_expression=settings.schedule,
            report_expression=settings.report_schedule,
            timezone=settings.timezone,
            misfire_grace_seconds=settings.misfire_grace_seconds,
        )


def started_scheduler(
    schedule: Schedule, forecast: Callable[[str], object], report: Callable[[], object]
) -> BackgroundScheduler:
    """A started scheduler: the forecast job at once (the catch-up) and on its trigger, the report on its own."""
    scheduler = BackgroundScheduler(
        timezone=schedule.timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": schedule.misfire_grace_seconds},
    )
    scheduler.add_listener(_log_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    first = threading.Event()

    def forecast_now_or_on_trigger() -> None:
        if not first.is_set():
            first.set()
            forecast("catch-up on becoming the scheduler")
        else:
            fired = previous_fire_time(schedule.forecast, datetime.now(UTC))
            forecast(f"the trigger at {fired.isoformat() if fired else 'unknown'}")

    scheduler.add_job(
        forecast_now_or_on_trigger, schedule.forecast, id=FORECAST_JOB_ID, next_run_time=datetime.now(UTC)
    )
    scheduler.add_job(report, schedule.report, id=REPORT_JOB_ID)
    scheduler.start()
    log.info(
        "daemon started as the scheduler: forecasts on %r, reports on %r (%s); next forecast after the catch-up: %s",
        schedule.forecast_expression,
        schedule.report_expression,
        schedule.timezone,
        next_fire_time(schedule.forecast, datetime.now(UTC)),
    )
    return scheduler
