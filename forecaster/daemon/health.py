"""`forecaster status`: is the job healthy? Last run, next run, failing tickers, overdue or not."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from forecaster import calendar
from forecaster.config import Settings
from forecaster.daemon.schedules import cron_trigger, next_fire_time, previous_fire_time
from forecaster.store import predictions as prediction_store
from forecaster.store import runs as run_store


@dataclass
class Health:
    healthy: bool
    lines: list[str] = field(default_factory=list)


def expected_as_of(settings: Settings, now: datetime) -> date | None:
    """The session the latest scheduled forecast should have covered, allowing for the misfire
    grace time; None if the schedule has not fired on a session day in the last two weeks."""
    trigger = cron_trigger(settings.schedule, settings.timezone)
    fired = previous_fire_time(trigger, now - timedelta(seconds=settings.misfire_grace_seconds))
    return None if fired is None else calendar.latest_completed_session(fired)


def check_health(engine: sa.Engine, settings: Settings, now: datetime) -> Health:
    with engine.connect() as connection:
        last_run = run_store.latest_run(connection=connection)
        last_as_of = prediction_store.latest_as_of(settings.preset, connection=connection)
        failing = run_store.run_failures_of(last_run.id, connection=connection) if last_run else []
    health = Health(healthy=True)
    if last_run is None:
        return Health(False, ["no run yet: start the daemon or run `forecaster run --once`"])
    finished = last_run.finished_at.isoformat(timespec="seconds") if last_run.finished_at else "not finished"
    health.lines.append(
        f"last run: #{last_run.id} {last_run.kind} as of {last_run.as_of}: {last_run.status} "
        f"({last_run.tickers_ok} ok, {last_run.tickers_failed} failed, {last_run.tickers_skipped} not due), "
        f"finished {finished}"
    )
    if last_run.status in ("failed", "interrupted"):
        health.healthy = False
    health.lines.append(f"latest forecast made from session: {last_as_of or 'none'}")
    expected = expected_as_of(settings, now)
    if expected is not None and (last_as_of is None or last_as_of < expected):
        health.healthy = False
        health.lines.append(f"OVERDUE: the forecast from session {expected} is missing")
    upcoming = next_fire_time(cron_trigger(settings.schedule, settings.timezone), now)
    health.lines.append(f"next scheduled run: {upcoming.isoformat(timespec='minutes') if upcoming else 'never'}")
    for failure in failing:
        health.lines.append(f"failing: {failure.ticker} at {failure.stage}: {failure.reason}")
    health.lines.append("healthy" if health.healthy else "UNHEALTHY")
    return health
