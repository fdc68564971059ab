"""`forecaster status`: is the job healthy? Last run; per market its latest forecast, overdue or not,
and its next run; failing tickers; tickers probably delisted.

A probably delisted ticker is listed but does not make the job unhealthy: the job is doing its
work, and the fix (drop or rename the ticker) is in the user's watch list, not in the job."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from forecaster.calendar import trading_calendar
from forecaster.config import Settings
from forecaster.daemon.schedules import cron_trigger, next_fire_time, previous_fire_time
from forecaster.logs import redact
from forecaster.prices.delisted import probably_delisted
from forecaster.store import predictions as prediction_store
from forecaster.store import runs as run_store


@dataclass
class Health:
    """The verdict, as `status` prints it (lines) and as `status --json` does (facts: every field of
    the last run, each market's state, the failing and probably delisted tickers)."""

    healthy: bool
    lines: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def json(self) -> str:
        """The facts and the verdict as one JSON object; times in UTC (ISO 8601), dates as YYYY-MM-DD.
        Redacted as log lines are: a run's error or a failure's reason may quote a database URL."""
        return redact(json.dumps({"healthy": self.healthy, **self.facts}, indent=2, default=_json_value))


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def expected_as_of(settings: Settings, calendar: str, now: datetime) -> date | None:
    """The session of `calendar` whose forecast should exist by `now`: with an explicit
    FORECASTER_SCHEDULE, the latest session closed (and settled) at its last firing before the
    misfire grace time; else the latest session whose close, settling delay and grace have passed.
    None when there is none in the calendar or the schedule has not fired in two weeks."""
    grace = timedelta(seconds=settings.misfire_grace_seconds)
    settle = settings.settle(calendar)
    market = trading_calendar(calendar)
    if settings.schedule is None:
        return market.latest_closed_session(now - grace, settle)
    fired = previous_fire_time(cron_trigger(settings.schedule, settings.timezone), now - grace)
    return None if fired is None else market.latest_closed_session(fired, settle)


def missing_forecast(settings: Settings, calendar: str, made: date | None, now: datetime) -> date | None:
    """The session of `calendar` whose forecast is due by `now` (`expected_as_of`) when the latest
    one made, `made`, is older or there is none: the market is overdue. Else None."""
    expected = expected_as_of(settings, calendar, now)
    return expected if expected is not None and (made is None or made < expected) else None


def _next_run(settings: Settings, calendar: str, now: datetime) -> datetime | None:
    if settings.schedule is not None:
        return next_fire_time(cron_trigger(settings.schedule, settings.timezone), now)
    return trading_calendar(calendar).next_close_after(now, settings.settle(calendar))


def _at(moment: datetime | None) -> str:
    return "never" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_health(engine: sa.Engine, settings: Settings, now: datetime) -> Health:
    """The job's health: the last run, and per market of the watch list its latest forecast against
    the one due by now (a market overdue makes the job unhealthy, whatever the others do). Times
    are in UTC."""
    markets = dict.fromkeys(settings.markets.values())
    with engine.connect() as connection:
        last_run = run_store.latest_run(connection=connection)
        latest = {c: prediction_store.latest_as_of(settings.preset, connection=connection, calendar=c) for c in markets}
        market_runs = {c: run_store.latest_run(connection=connection, calendar=c) for c in markets}
        delisted = probably_delisted(settings.markets, connection=connection, after=settings.delisted_after_sessions)
        failing = run_store.run_failures_of(last_run.id, connection=connection) if last_run else []
    facts: dict[str, Any] = {"checked_at": now, "last_run": None, "markets": [], "failing": [], "probably_delisted": []}
    if last_run is None:
        return Health(False, ["no run yet: start the daemon or run `forecaster run --once`"], facts)
    health = Health(healthy=last_run.status not in ("failed", "interrupted"), facts=facts)
    facts["last_run"] = asdict(last_run)
    finished = (
        f"finished {_at(last_run.finished_at)}" if last_run.finished_at else "still running (or its process died)"
    )
    health.lines.append(
        f"last run: #{last_run.id} {last_run.kind} {last_run.calendar or 'XNYS'} session {last_run.as_of}: "
        f"{last_run.status} ({last_run.tickers_ok} ok, {last_run.tickers_failed} failed, "
        f"{last_run.tickers_waiting} waiting for a close, {last_run.tickers_skipped} not due), {finished}"
    )
    for calendar in markets:
        made = latest[calendar]
        missing = missing_forecast(settings, calendar, made, now)
        health.healthy &= missing is None
        state = "on time" if missing is None else f"OVERDUE: the forecast from {missing} is missing"
        market_run = market_runs[calendar]
        if market_run is not None and market_run.tickers_waiting:
            state += f", {market_run.tickers_waiting} ticker(s) waiting for a close (the wait is bounded: README)"
        next_run = _next_run(settings, calendar, now)
        health.lines.append(
            f"{calendar}: latest forecast made from session {made or 'none'}; {state}; next run {_at(next_run)}"
        )
        facts["markets"].append(
            {
                "calendar": calendar,
                "latest_as_of": made,
                "overdue_as_of": missing,
                "tickers_waiting": market_run.tickers_waiting if market_run is not None else 0,
                "next_run": next_run,
            }
        )
    for failure in failing:
        health.lines.append(f"failing: {failure.ticker} at {failure.stage}: {failure.reason}")
    health.lines += [ticker.line for ticker in delisted]
    facts["failing"] = [{"ticker": f.ticker, "stage": f.stage, "reason": f.reason} for f in failing]
    facts["probably_delisted"] = [asdict(ticker) for ticker in delisted]
    health.lines.append("healthy" if health.healthy else "UNHEALTHY")
    return health
