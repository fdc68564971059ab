"""APScheduler wiring: the catch-up at once, then the forecast job after each market's close (or on an
explicit schedule), the report on its own.

The jobs themselves live in `forecaster.daemon.jobs`, the schedules in `forecaster.daemon.schedules`,
the process that runs a scheduler while it holds the lock in `forecaster.daemon.process`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from forecaster.config import Settings
from forecaster.daemon.schedules import MarketCloseTrigger, cron_trigger, previous_fire_time

log = logging.getLogger(__name__)

FORECAST_JOB_ID = "forecast"
CATCH_UP_JOB_ID = "catch-up"
REPORT_JOB_ID = "report"
OVERDUE_JOB_ID = "overdue"
WATCH_EXECUTOR = "watch"
#: How often the overdue check (forecaster.daemon.overdue) runs, the first time as the scheduler starts.
WATCH_SECONDS = 300


def _log_job_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("job %s missed its %s run", event.job_id, event.scheduled_run_time)
    else:
        log.error("job %s failed: %s", event.job_id, event.exception, exc_info=event.exception)


@dataclass(frozen=True)
class Schedule:
    """When the daemon forecasts and reports, parsed before anything else so a bad trigger changes
    nothing, with what APScheduler's job defaults need.

    Forecasts: after each market's close (`markets`: calendar -> its prices' settling delay), or,
    with an explicit crontab (`forecast`, FORECASTER_SCHEDULE), on that for every market."""

    forecast: CronTrigger | None
    markets: dict[str, timedelta]
    report: CronTrigger
    forecast_expression: str | None
    report_expression: str
    timezone: str
    misfire_grace_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        return cls(
            forecast=None if settings.schedule is None else cron_trigger(settings.schedule, settings.timezone),
            markets={c: settings.settle(c) for c in dict.fromkeys(settings.markets.values())},
            report=cron_trigger(settings.report_schedule, settings.timezone, setting="report_schedule"),
            forecast_expression=settings.schedule,
            report_expression=settings.report_schedule,
            timezone=settings.timezone,
            misfire_grace_seconds=settings.misfire_grace_seconds,
        )

    def forecast_triggers(self) -> dict[str, tuple[BaseTrigger, list[str] | None]]:
        """job id -> (its trigger, the calendars it catches up; None: every market)."""
        if self.forecast is not None:
            return {FORECAST_JOB_ID: (self.forecast, None)}
        return {
            f"{FORECAST_JOB_ID} {calendar}": (MarketCloseTrigger(calendar, settle), [calendar])
            for calendar, settle in self.markets.items()
        }

    def describe(self) -> str:
        if self.forecast_expression is not None:
            return f"forecasts on {self.forecast_expression!r} ({self.timezone})"
        return "forecasts after each close of " + ", ".join(f"{c} (+{s})" for c, s in self.markets.items())


#: The forecast job: (what fired it, the calendars to catch up or None for every market).
ForecastJob = Callable[[str, list[str] | None], object]


def started_scheduler(
    schedule: Schedule,
    forecast: ForecastJob,
    report: Callable[[], object],
    watch: Callable[[], object] | None,
) -> BackgroundScheduler:
    """A started scheduler: the catch-up of every market at once, then each forecast trigger, and the
    report on its own. Jobs run one at a time (one executor thread): a cycle uses every core, and
    two catch-ups of one database would only wait on each other. `watch` (the overdue check), if
    given, runs at once and every WATCH_SECONDS on a thread of its own, so a long cycle does not
    hold it up."""
    scheduler = BackgroundScheduler(
        timezone=schedule.timezone,
        executors={"default": ThreadPoolExecutor(1), WATCH_EXECUTOR: ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": schedule.misfire_grace_seconds},
    )
    scheduler.add_listener(_log_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.add_job(forecast, args=("catch-up on becoming the scheduler", None), id=CATCH_UP_JOB_ID)
    for job_id, (trigger, calendars) in schedule.forecast_triggers().items():
        scheduler.add_job(_fired(forecast, trigger, calendars), trigger, id=job_id)
    scheduler.add_job(report, schedule.report, id=REPORT_JOB_ID)
    if watch is not None:
        scheduler.add_job(
            watch,
            IntervalTrigger(seconds=WATCH_SECONDS),
            id=OVERDUE_JOB_ID,
            executor=WATCH_EXECUTOR,
            next_run_time=datetime.now(UTC),
        )
    scheduler.start()
    upcoming = {
        job.id: job.next_run_time for job in scheduler.get_jobs() if job.id not in (CATCH_UP_JOB_ID, OVERDUE_JOB_ID)
    }
    log.info(
        "daemon started as the scheduler: %s, reports on %r (%s); next: %s",
        schedule.describe(),
        schedule.report_expression,
        schedule.timezone,
        ", ".join(f"{job} {at.isoformat(timespec='minutes') if at else 'never'}" for job, at in upcoming.items()),
    )
    return scheduler


def _fired(forecast: ForecastJob, trigger: BaseTrigger, calendars: list[str] | None) -> Callable[[], object]:
    def job() -> object:
        fired = previous_fire_time(trigger, datetime.now(UTC)) if isinstance(trigger, CronTrigger) else None
        what = f"the trigger at {fired.isoformat()}" if fired else str(trigger)
        return forecast(what, calendars)

    return job
