"""The daily cycle: one session of one market's calendar, for the tickers that owe it a forecast.

A cycle for session D of calendar C forecasts the session of C after D. It is a pure function of
(prices through D, each ticker's model state trained through the session before D, the preset),
so running it twice, or again after a crash, writes each row once:

    start a run; fetch what is missing; enqueue one task per ticker; work on them with any
    other worker until none is open; finish the run (its counts are read from what it wrote,
    whoever wrote it).

The walks over cycles (the daemon's catch-up, the backfill) are in forecaster.walks. Only the
holder of the scheduler lock (forecaster.daemon.leadership) starts and finishes runs; workers in
other processes only claim tasks (forecaster.worker).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from forecaster import stages, worker
from forecaster.calendar import trading_calendar
from forecaster.context import CycleContext
from forecaster.errors import CycleInterrupted, NotInCharge, TickerFailure, one_line
from forecaster.prices.ingest import ensure_prices
from forecaster.store import predictions as prediction_store
from forecaster.store import runs as run_store
from forecaster.store import series as series_store
from forecaster.store import tasks as task_store

log = logging.getLogger(__name__)

#: How often a cycle whose remaining tasks other workers hold checks on them.
DRAIN_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class CycleOutcome:
    run_id: int
    as_of: date
    target_session: date
    status: str  # ok | partial | failed | interrupted
    tickers_ok: int
    tickers_failed: int
    tickers_skipped: int
    calendar: str
    tickers_waiting: int = 0  # for a close of this session or an earlier one, not published yet


def close_abandoned_runs(context: CycleContext) -> None:
    """Finishes as interrupted the runs a process left behind when it died or lost the lock;
    the caller holds the scheduler lock."""
    with context.scheduler_transaction() as connection:
        closed = run_store.close_abandoned_runs(connection=connection, now=context.clock())
    for record in closed:
        log.info(
            "run %d (as of %s) was left running by a stopped process: recorded as interrupted", record.id, record.as_of
        )


def run_cycle(
    context: CycleContext,
    as_of: date,
    *,
    tickers: Sequence[str] | None = None,
    calendar: str | None = None,
    kind: run_store.RunKind = "daily",
    prefetch_failures: Mapping[str, TickerFailure] | None = None,
    waiting: int = 0,
) -> CycleOutcome:
    """Forecasts the session after `as_of` for those of `tickers` (default: the watch list) that
    have no forecast for it yet; the tickers share one calendar (`calendar`, which names it when
    there are none), of which `as_of` is a session. `waiting` counts the calendar's other tickers
    that wait for a close not published yet (forecaster.walks): recorded, not due, not failed.

    Missing prices are fetched first, unless the caller already fetched them
    (`prefetch_failures` then holds what that fetch could not get). A ticker forecast for the
    first time starts its series at `as_of`.
    """
    wanted = list(context.tickers if tickers is None else tickers)
    calendar = calendar or _one_calendar(context, wanted)
    market = trading_calendar(calendar)
    if not market.is_session(as_of):
        raise ValueError(f"{as_of} is not a {market.label} session")
    target = market.next_session(as_of)
    preset = context.preset
    context.check_in_charge()
    with context.scheduler_transaction() as connection:
        run_id = run_store.start_run(
            kind,
            connection=connection,
            as_of=as_of,
            preset=preset.name,
            host=context.host,
            started_at=context.clock(),
            calendar=calendar,
        )
        series_store.enroll(preset.name, wanted, as_of, connection=connection, now=context.clock(), calendar=calendar)
        done = prediction_store.predicted_tickers(preset.name, target, connection=connection)
    todo = [t for t in wanted if t not in done]
    skipped = len(context.markets().get(calendar, [])) - len(todo) - waiting
    status: run_store.RunEnding = "ok"
    error: str | None = None
    try:
        if todo:
            _enqueue(context, run_id, calendar, as_of, todo, prefetch_failures)
            _drain(context, calendar, as_of)
    except NotInCharge as exc:
        status, error = "interrupted", str(exc)
        raise
    except CycleInterrupted:
        status, error = "interrupted", "stop requested"
        raise
    except Exception as exc:
        status, error = "failed", one_line(exc)
        raise
    finally:
        outcome = _finish(context, run_id, calendar, as_of, status, (max(skipped, 0), waiting), error)
    return outcome


def _one_calendar(context: CycleContext, tickers: Sequence[str]) -> str:
    calendars = list(context.markets(tickers))
    if len(calendars) != 1:
        raise ValueError(f"a cycle is one calendar's session; these tickers trade on {', '.join(calendars)}")
    return calendars[0]


def _enqueue(
    context: CycleContext,
    run_id: int,
    calendar: str,
    as_of: date,
    todo: list[str],
    prefetch_failures: Mapping[str, TickerFailure] | None,
) -> None:
    """Fetches what `todo` lacks (unless the caller fetched it), records the tickers the fetch
    failed on, and makes the others the run's tasks."""
    if prefetch_failures is None:
        with stages.timed("fetch", calendar, as_of):
            failures = ensure_prices(
                context.engine,
                context.source,
                dict.fromkeys(todo, as_of),
                as_of,
                calendar=trading_calendar(calendar),
                rules=context.price_rules,
                clock=context.clock,
            )
    else:
        failures = {t: f for t, f in prefetch_failures.items() if t in todo}
    with context.scheduler_transaction() as connection:
        run_store.record_failures(run_id, {t: (f.stage, f.reason) for t, f in failures.items()}, connection=connection)
        task_store.enqueue(
            context.preset.name,
            as_of,
            run_id,
            [t for t in todo if t not in failures],
            connection=connection,
            calendar=calendar,
        )


def _drain(context: CycleContext, calendar: str, as_of: date) -> None:
    """Works on the cycle's tasks until every one is done or failed, including those other
    workers hold (their expired leases are claimed here too). Losing the scheduler lock stops
    it at the next ticker chunk: the tasks not trained yet go back to the queue."""
    while True:
        context.check_in_charge()
        try:
            worker.work(context, as_of=as_of, should_stop=lambda: not context.in_charge())
        except CycleInterrupted:
            context.check_in_charge()
            raise
        with context.engine.connect() as connection:
            if task_store.open_tasks(context.preset.name, as_of, connection=connection, calendar=calendar) == 0:
                return
        if context.wait(DRAIN_POLL_SECONDS):
            raise CycleInterrupted


def _finish(
    context: CycleContext,
    run_id: int,
    calendar: str,
    as_of: date,
    status: run_store.RunEnding,
    not_worked: tuple[int, int],
    error: str | None,
) -> CycleOutcome:
    """Records the run's end (unless another process already did) and logs it. If the database
    is gone, the run stays 'running' until the next holder of the scheduler lock closes it."""
    target = trading_calendar(calendar).next_session(as_of)
    skipped, waiting = not_worked  # (not due, waiting for a close)
    try:
        with context.scheduler_transaction() as connection:
            record = run_store.finish_run(
                run_id,
                connection=connection,
                status=status,
                tickers_skipped=skipped,
                tickers_waiting=waiting,
                error=error,
                finished_at=context.clock(),
            ) or run_store.get_run(run_id, connection=connection)
            failures = run_store.run_failures_of(run_id, connection=connection)
    except sa.exc.OperationalError as exc:
        log.warning("run %d: could not record its end (%s); the next cycle will", run_id, one_line(exc))
        return CycleOutcome(run_id, as_of, target, status, 0, 0, skipped, calendar, waiting)
    outcome = CycleOutcome(
        run_id,
        as_of,
        target,
        record.status,
        record.tickers_ok,
        record.tickers_failed,
        record.tickers_skipped,
        calendar,
        record.tickers_waiting,
    )
    _log_outcome(outcome, failures)
    return outcome


def _log_outcome(outcome: CycleOutcome, failures: list[run_store.RunFailure]) -> None:
    log.info(
        "run %d %s: %s session %s, forecast for %s: %d ok, %d failed, %d waiting for a close, %d not due",
        outcome.run_id,
        outcome.status,
        outcome.calendar,
        outcome.as_of,
        outcome.target_session,
        outcome.tickers_ok,
        outcome.tickers_failed,
        outcome.tickers_waiting,
        outcome.tickers_skipped,
        extra={"event": "run", **{k: str(v) for k, v in vars(outcome).items()}},
    )
    for failure in failures:
        log.warning(
            "run %d: %s failed at %s: %s",
            outcome.run_id,
            failure.ticker,
            failure.stage,
            failure.reason,
            extra={
                "event": "ticker_failed",
                "run_id": outcome.run_id,
                "ticker": failure.ticker,
                "stage": failure.stage,
            },
        )
