"""The daemon: APScheduler wiring only. The jobs themselves live in `forecaster.daemon.jobs`."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from forecaster.config import Settings
from forecaster.worker import CycleInterrupted
from forecaster.errors import UserError
from forecaster.daemon.leadership import Leadership

log = logging.getLogger(__name__)

#: How often a process that is not the scheduler tries to become it, and an idle worker looks for tasks.
LEADERSHIP_POLL_SECONDS = 2.0
WORKER_POLL_SECONDS = 1.0
WORKER_ERROR_PAUSE_SECONDS = 5

FORECAST_JOB_ID = "forecast"
REPORT_JOB_ID = "report"


_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # crontab: 0 and 7 are Sunday


def _crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field in APScheduler's terms.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0, and
    `CronTrigger.from_crontab` passes numbers through unchanged ("1-5" would mean
    Tuesday to Saturday). Numbers, ranges and steps are spelled out as day names.
    """
    if not any(c.isdigit() for c in field):
        return field
    days: list[int] = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            low, high = (int(v) for v in span.split("-", 1))
        else:
            low = int(span)
            high = 6 if step else low
        if not (0 <= low <= high <= 7):
            raise ValueError(f"day of week {part!r} is out of 0-7")
        days += range(low, high + 1, int(step) if step else 1)
    return ",".join(dict.fromkeys(_CRON_WEEKDAYS[d] for d in days))


def cron_trigger(expression: str, timezone_name: str, *, setting: str = "schedule") -> CronTrigger:
    """A trigger from a 5-field crontab string (crontab's weekday numbers, Sunday = 0);
    a bad string or zone is a UserError naming the setting."""
    try:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"expected 5 fields, got {len(fields)}")
        minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month,
            day_of_week=_crontab_day_of_week(day_of_week), timezone=timezone_name,
        )
    except (ValueError, KeyError, LookupError) as error:
        raise UserError(f"setting {setting}: {expression!r} in {timezone_name!r} is not a valid schedule ({error})") from None


def next_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    return trigger.get_next_fire_time(None, now)


def previous_fire_time(trigger: CronTrigger, now: datetime, lookback: timedelta = timedelta(days=14)) -> datetime | None:
    """The last time the trigger fired at or before `now` (APScheduler 3 only looks forward)."""
    fire, last = trigger.get_next_fire_time(None, now - lookback), None
    while fire is not None and fire <= now:
        last, fire = fire, trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last


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


def serve(
    settings: Settings,
    triggers: tuple[CronTrigger, CronTrigger],
    *,
    forecast: Callable[[], object],
    report: Callable[[], object],
    work: Callable[[], int],
    leadership: Leadership,
    stop: threading.Event,
) -> None:
    """Runs until SIGTERM or SIGINT. On PostgreSQL every process runs `work` (claim and train
    the cycles' tasks) in a worker thread; the one process that holds `leadership` also schedules
    `forecast` at once (the catch-up) and then on the schedule, and `report` on the report
    schedule. A process that is not the scheduler tries to become it every few seconds,
    so another takes over when the scheduler dies. On a signal, the job in flight sees
    `stop`, ends at its next ticker chunk, and this returns once it has."""
    forecast_trigger, report_trigger = triggers
    scheduler = BackgroundScheduler(
        timezone=settings.timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace_seconds},
    )
    scheduler.add_listener(_log_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s: finishing the ticker chunk in flight, then stopping", signal.Signals(signum).name)
        stop.set()

    def work_until_stopped() -> None:
        while not stop.is_set():
            try:
                if work() == 0:
                    stop.wait(WORKER_POLL_SECONDS)
            except CycleInterrupted:
                return
            except sa.exc.OperationalError as error:  # the database is away: expected, one line
                reason = str(error.orig or error).strip().splitlines()[0]
                log.warning("worker: database unavailable (%s); retrying in %d s", reason, WORKER_ERROR_PAUSE_SECONDS)
                stop.wait(WORKER_ERROR_PAUSE_SECONDS)
            except Exception:
                log.exception("worker: claim failed; retrying in %d s", WORKER_ERROR_PAUSE_SECONDS)
                stop.wait(WORKER_ERROR_PAUSE_SECONDS)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # On SQLite (one writer, one process) the scheduler's own cycles do all the work.
    worker = threading.Thread(target=work_until_stopped, name="worker")
    if not leadership.single_process:
        worker.start()
    log.info("daemon running (pid %d); scheduler: %s", os.getpid(), "this process" if leadership.is_leader else "another process, for now")
    try:
        while not stop.is_set():  # a timed wait keeps the main thread ready for signals
            if not scheduler.running and leadership.try_acquire():
                scheduler.add_job(forecast, forecast_trigger, id=FORECAST_JOB_ID, next_run_time=datetime.now(timezone.utc))
                scheduler.add_job(report, report_trigger, id=REPORT_JOB_ID)
                scheduler.start()
                log.info(
                    "daemon started as the scheduler: forecasts on %r, reports on %r (%s); next forecast after the catch-up: %s",
                    settings.schedule, settings.report_schedule, settings.timezone,
                    next_fire_time(forecast_trigger, datetime.now(timezone.utc)),
                )
            stop.wait(LEADERSHIP_POLL_SECONDS)
    finally:
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)
        if worker.is_alive():
            worker.join()
        leadership.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("daemon stopped")
