"""`/metrics` for Prometheus (prometheus_client), served by every daemon process on FORECASTER_METRICS_PORT.

At each scrape (at most every CACHE_SECONDS the database is asked again) it says:

- the job, read from the database (the coverage again only once a cycle has ended), so that
  every process (scheduler or worker) tells the same: per calendar the time of the last
  successful cycle (status ok or partial), the session, duration and tickers ok / failed /
  skipped / waiting of the latest finished cycle, the latest session forecast from and whether
  it is overdue (as `forecaster status` reckons it); tasks pending or leased; the pooled 80 %
  and 95 % coverage of the forecasts realised over the latest COVERAGE_SESSIONS target
  sessions; and whether the database answered;
- this process: whether it holds the scheduler lock, and the seconds it spent on each stage
  (fetch, train, write) of its latest cycle per calendar and in all (forecaster.stages).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import sqlalchemy as sa
from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from forecaster import stages
from forecaster.config import Settings
from forecaster.daemon.health import missing_forecast
from forecaster.daemon.leadership import Leadership
from forecaster.errors import UserError, one_line
from forecaster.store import predictions as prediction_store
from forecaster.store.schema import cycle_tasks, prediction_accuracy, predictions, prices, runs

log = logging.getLogger(__name__)

CACHE_SECONDS = 15.0
COVERAGE_SESSIONS = 20
_SUCCESS = ("ok", "partial")


@dataclass
class _JobState:
    """What the database says, per calendar of the watch list."""

    last_success: dict[str, datetime] = field(default_factory=dict)
    last_cycle: dict[str, sa.Row] = field(default_factory=dict)
    latest_forecast: dict[str, date | None] = field(default_factory=dict)
    overdue: dict[str, bool] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    coverage: tuple[float | None, float | None, int] = (None, None, 0)


class ForecasterCollector(Collector):
    def __init__(self, engine: sa.Engine, settings: Settings, leadership: Leadership) -> None:
        self.engine, self.settings, self.leadership = engine, settings, leadership
        self._lock = threading.Lock()
        self._cached: tuple[float, _JobState | None] = (float("-inf"), None)
        self._coverage_of: tuple[int, ...] | None = None  # the latest cycles the coverage was read after
        self._coverage: tuple[float | None, float | None, int] = (None, None, 0)

    def collect(self) -> Iterator[Metric]:
        yield _gauge("scheduler_lock_held", "1 while this process holds the scheduler lock", self.leadership.is_leader)
        yield from _stage_metrics()
        state = self._job_state()
        yield _gauge(
            "database_up", "1 when this scrape could read the job's state from the database", state is not None
        )
        if state is not None:
            yield from _job_metrics(state)

    def _job_state(self) -> _JobState | None:
        with self._lock:
            read_at, state = self._cached
            if time.monotonic() - read_at < CACHE_SECONDS:
                return state
            try:
                state = self._read()
            except sa.exc.SQLAlchemyError as error:
                log.debug("metrics: database unreadable (%s)", one_line(error))
                state = None
            self._cached = (time.monotonic(), state)
            return state

    def _read(self) -> _JobState:
        state = _JobState()
        preset, now = self.settings.preset, datetime.now(UTC)
        r = runs.c
        with self.engine.connect() as connection:
            for calendar in dict.fromkeys(self.settings.markets.values()):
                of_calendar = sa.and_(r.calendar == calendar, r.preset == preset, r.finished_at.is_not(None))
                success = connection.execute(
                    sa.select(sa.func.max(r.finished_at)).where(of_calendar, r.status.in_(_SUCCESS))
                ).scalar_one()
                if success is not None:
                    state.last_success[calendar] = success
                last = connection.execute(
                    sa.select(runs).where(of_calendar).order_by(r.finished_at.desc(), r.id.desc()).limit(1)
                ).first()
                if last is not None:
                    state.last_cycle[calendar] = last
                made = prediction_store.latest_as_of(preset, connection=connection, calendar=calendar)
                state.latest_forecast[calendar] = made
                state.overdue[calendar] = missing_forecast(self.settings, calendar, made, now) is not None
            t = cycle_tasks.c
            state.tasks = dict(
                connection.execute(
                    sa.select(t.status, sa.func.count()).where(t.status.in_(("pending", "leased"))).group_by(t.status)
                ).all()
            )
            # The view's query is the costly one, and its answer moves only when a cycle ends.
            ended = tuple(sorted(run.id for run in state.last_cycle.values()))
            if ended != self._coverage_of:
                self._coverage = _coverage(connection, preset)
                self._coverage_of = ended
            state.coverage = self._coverage
        return state


def _coverage(connection: sa.Connection, preset: str) -> tuple[float | None, float | None, int]:
    """Pooled 80 % and 95 % coverage of the forecasts realised for the latest target sessions."""
    p = predictions.c
    newest_close = sa.select(sa.func.max(prices.c.session_date)).scalar_subquery()
    since = connection.execute(
        sa.select(p.target_session)
        .where(p.preset == preset, p.target_session <= newest_close)  # of those that can be realised
        .distinct()
        .order_by(p.target_session.desc())
        .limit(1)
        .offset(COVERAGE_SESSIONS)
    ).scalar_one_or_none()
    v = prediction_accuracy.c
    row = connection.execute(
        sa.select(sa.func.avg(v.covered_80), sa.func.avg(v.covered_95), sa.func.count(v.covered_80)).where(
            v.preset == preset, v.covered_80.is_not(None), v.target_session > (since or date.min)
        )
    ).one()
    return (None if row[0] is None else float(row[0]), None if row[1] is None else float(row[1]), int(row[2]))


def _gauge(name: str, documentation: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"forecaster_{name}", documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), float(value))
    return family


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _stage_metrics() -> Iterator[Metric]:
    latest = GaugeMetricFamily(
        "forecaster_last_cycle_stage_seconds",
        "Seconds this process spent on each stage of its latest cycle of the calendar",
        labels=["calendar", "stage"],
    )
    for calendar, cycle in stages.latest_cycles().items():
        for stage, seconds in cycle.seconds.items():
            latest.add_metric([calendar, stage], seconds)
    yield latest
    total = CounterMetricFamily(
        "forecaster_stage_seconds",
        "Seconds this process spent on each stage since it started",
        labels=["calendar", "stage"],
    )
    for (calendar, stage), seconds in stages.totals().items():
        total.add_metric([calendar, stage], seconds)
    yield total


def _job_metrics(state: _JobState) -> Iterator[Metric]:
    success = GaugeMetricFamily(
        "forecaster_last_success_timestamp_seconds",
        "When the latest cycle of the calendar that ended ok or partial finished (Unix time)",
        labels=["calendar"],
    )
    for calendar, finished in state.last_success.items():
        success.add_metric([calendar], finished.timestamp())
    yield success
    tickers = GaugeMetricFamily(
        "forecaster_last_cycle_tickers",
        "Tickers of the latest finished cycle of the calendar, by outcome",
        labels=["calendar", "outcome"],
    )
    duration = GaugeMetricFamily(
        "forecaster_last_cycle_duration_seconds",
        "Wall time of the latest finished cycle of the calendar",
        labels=["calendar"],
    )
    session = GaugeMetricFamily(
        "forecaster_last_cycle_session_timestamp_seconds",
        "The session (midnight UTC, Unix time) the latest finished cycle of the calendar forecast from",
        labels=["calendar"],
    )
    for calendar, run in state.last_cycle.items():
        for outcome in ("ok", "failed", "skipped", "waiting"):
            tickers.add_metric([calendar, outcome], getattr(run, f"tickers_{outcome}"))
        duration.add_metric([calendar], (run.finished_at - run.started_at).total_seconds())
        if run.as_of is not None:
            session.add_metric([calendar], _epoch(run.as_of))
    yield from (tickers, duration, session)
    latest = GaugeMetricFamily(
        "forecaster_latest_forecast_session_timestamp_seconds",
        "The latest session (midnight UTC, Unix time) a forecast of the calendar was made from",
        labels=["calendar"],
    )
    overdue = GaugeMetricFamily(
        "forecaster_overdue",
        "1 when the calendar's forecast due by now is missing (as `forecaster status` says)",
        labels=["calendar"],
    )
    for calendar, made in state.latest_forecast.items():
        if made is not None:
            latest.add_metric([calendar], _epoch(made))
        overdue.add_metric([calendar], float(state.overdue[calendar]))
    yield from (latest, overdue)
    tasks = GaugeMetricFamily("forecaster_tasks", "Tickers of open cycles still to train, by status", labels=["status"])
    for status in ("pending", "leased"):
        tasks.add_metric([status], state.tasks.get(status, 0))
    yield tasks
    coverage = GaugeMetricFamily(
        "forecaster_interval_coverage_ratio",
        f"Share of the realised closes of the latest {COVERAGE_SESSIONS} target sessions inside the interval",
        labels=["level"],
    )
    for level, value in zip(("0.8", "0.95"), state.coverage[:2], strict=True):
        if value is not None:
            coverage.add_metric([level], value)
    yield coverage
    yield _gauge(
        "interval_coverage_forecasts", "Realised forecasts the coverage ratios are taken over", state.coverage[2]
    )


def serve_metrics(port: int, engine: sa.Engine, settings: Settings, leadership: Leadership) -> None:
    """Serves /metrics on `port` (all interfaces) from a thread of its own; a port that cannot be
    listened on is a UserError naming it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ForecasterCollector(engine, settings, leadership))
    try:
        start_http_server(port, registry=registry)
    except OSError as error:
        raise UserError(f"FORECASTER_METRICS_PORT {port}: cannot listen on it ({error.strerror or error})") from None
    log.info("metrics at http://0.0.0.0:%d/metrics", port)
