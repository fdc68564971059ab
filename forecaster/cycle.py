"""The daily cycle, and the two walks over it: the daemon's catch-up and the backfill.

A cycle for session D forecasts the session after D for the tickers that owe it one. It is a
pure function of (prices through D, each ticker's model state trained through the session
before D, the preset), so running it twice, or again after a crash, writes each row once.

    run_cycle   start a run; fetch what is missing; enqueue one task per ticker; work on them
                with any other worker until none is open; finish the run (its counts are read
                from what it wrote, whoever wrote it).
    catch_up    the daemon's walk: every (ticker, session) owed and not yet forecast, session by
                session in date order, so a ticker's state through D-1 exists before D.
    backfill    the backtest's walk: every session from START to END for the whole watch list.

Only the holder of the scheduler lock (forecaster.daemon.leadership) starts and finishes runs;
workers in other processes only claim tasks (forecaster.worker).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from forecaster import calendar, worker
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

#: A (ticker, session) whose cycle failed this many times at validate, train or write is given up.
GIVE_UP_AFTER_FAILURES = 3


@dataclass(frozen=True)
class CycleOutcome:
    run_id: int
    as_of: date
    target_session: date
    status: str  # ok | partial | failed | interrupted
    tickers_ok: int
    tickers_failed: int
    tickers_skipped: int


def close_abandoned_runs(context: CycleContext) -> None:
    """Finishes as interrupted the runs a process left behind when it died or lost the lock;
    the caller holds the scheduler lock."""
    with context.engine.begin() as connection:
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
    kind: run_store.RunKind = "daily",
    prefetch_failures: Mapping[str, TickerFailure] | None = None,
) -> CycleOutcome:
    """Forecasts the session after `as_of` for those of `tickers` (default: the watch list) that
    have no forecast for it yet.

    Missing prices are fetched first, unless the caller already fetched them
    (`prefetch_failures` then holds what that fetch could not get). A ticker forecast for the
    first time starts its series at `as_of`.
    """
    if not calendar.is_session(as_of):
        raise ValueError(f"{as_of} is not a trading session")
    target = calendar.next_session(as_of)
    preset = context.preset
    wanted = list(context.tickers if tickers is None else tickers)
    context.check_in_charge()
    with context.engine.begin() as connection:
        run_id = run_store.start_run(
            kind, connection=connection, as_of=as_of, preset=preset.name, host=context.host, started_at=context.clock()
        )
        series_store.enroll(preset.name, wanted, as_of, connection=connection, now=context.clock())
        done = prediction_store.predicted_tickers(preset.name, target, connection=connection)
    todo = [t for t in wanted if t not in done]
    skipped = len(context.tickers) - len(todo)
    status: run_store.RunEnding = "ok"
    error: str | None = None
    try:
        if todo:
            _enqueue(context, run_id, as_of, todo, prefetch_failures)
            _drain(context, as_of)
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
        outcome = _finish(context, run_id, as_of, status, skipped, error)
    return outcome


def _enqueue(
    context: CycleContext,
    run_id: int,
    as_of: date,
    todo: list[str],
    prefetch_failures: Mapping[str, TickerFailure] | None,
) -> None:
    """Fetches what `todo` lacks (unless the caller fetched it), records the tickers the fetch
    failed on, and makes the others the run's tasks."""
    if prefetch_failures is None:
        failures = ensure_prices(
            context.engine,
            context.source,
            dict.fromkeys(todo, as_of),
            as_of,
            history_sessions=context.history_sessions,
            clock=context.clock,
        )
    else:
        failures = {t: f for t, f in prefetch_failures.items() if t in todo}
    with context.engine.begin() as connection:
        run_store.record_failures(run_id, {t: (f.stage, f.reason) for t, f in failures.items()}, connection=connection)
        task_store.enqueue(
            context.preset.name, as_of, run_id, [t for t in todo if t not in failures], connection=connection
        )


def _drain(context: CycleContext, as_of: date) -> None:
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
            if task_store.open_tasks(context.preset.name, as_of, connection=connection) == 0:
                return
        if context.wait(DRAIN_POLL_SECONDS):
            raise CycleInterrupted


def _finish(
    context: CycleContext, run_id: int, as_of: date, status: run_store.RunEnding, skipped: int, error: str | None
) -> CycleOutcome:
    """Records the run's end (unless another process already did) and logs it. If the database
    is gone, the run stays 'running' until the next holder of the scheduler lock closes it."""
    try:
        with context.engine.begin() as connection:
            record = run_store.finish_run(
                run_id,
                connection=connection,
                status=status,
                tickers_skipped=skipped,
                error=error,
                finished_at=context.clock(),
            ) or run_store.get_run(run_id, connection=connection)
            failures = run_store.run_failures_of(run_id, connection=connection)
    except sa.exc.OperationalError as exc:
        log.warning("run %d: could not record its end (%s); the next cycle will", run_id, one_line(exc))
        return CycleOutcome(run_id, as_of, calendar.next_session(as_of), status, 0, 0, skipped)
    outcome = CycleOutcome(
        run_id,
        as_of,
        calendar.next_session(as_of),
        record.status,
        record.tickers_ok,
        record.tickers_failed,
        record.tickers_skipped,
    )
    _log_outcome(outcome, failures)
    return outcome


def _log_outcome(outcome: CycleOutcome, failures: list[run_store.RunFailure]) -> None:
    log.info(
        "run %d %s: as of %s, forecast for %s: %d ok, %d failed, %d not due",
        outcome.run_id,
        outcome.status,
        outcome.as_of,
        outcome.target_session,
        outcome.tickers_ok,
        outcome.tickers_failed,
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


def backfill(
    context: CycleContext, start: date, end: date, on_cycle: Callable[[CycleOutcome], None] | None = None
) -> list[CycleOutcome]:
    """The backtest: one cycle for every session from `start` to `end` inclusive, for every
    ticker of the watch list, after one fetch of everything the walk needs. A ticker the fetch
    failed on is recorded as failed in each cycle, not fetched again."""
    sessions = calendar.sessions_between(start, end)
    if not sessions:
        return []
    fetch_failures = ensure_prices(
        context.engine,
        context.source,
        dict.fromkeys(context.tickers, sessions[0]),
        sessions[-1],
        history_sessions=context.history_sessions,
        clock=context.clock,
    )
    outcomes = []
    for session in sessions:
        if context.should_stop():
            raise CycleInterrupted
        outcome = run_cycle(context, session, kind="backfill", prefetch_failures=fetch_failures)
        outcomes.append(outcome)
        if on_cycle:
            on_cycle(outcome)
    return outcomes


def catch_up_now(context: CycleContext, *, through: date | None = None) -> list[CycleOutcome]:
    """The forecast job of the daemon and of `run --once`: closes the runs a stopped process left
    behind, then catches up every session owed through `through` (default: the latest session
    whose close has passed), in order. The caller holds the scheduler lock."""
    if through is None:
        through = calendar.latest_completed_session(context.clock())
    close_abandoned_runs(context)
    return catch_up(context, through)


def catch_up(context: CycleContext, latest: date) -> list[CycleOutcome]:
    """The daemon's job: every session owed by a ticker of the watch list (see `owed_sessions`)
    through `latest`, in date order, then `latest` itself even when nothing is owed there."""
    _start_newcomers(context, latest)
    owed = owed_sessions(context, latest)
    fetch_failures = (
        ensure_prices(
            context.engine,
            context.source,
            {t: sessions[0] for t, sessions in owed.items()},
            latest,
            history_sessions=context.history_sessions,
            clock=context.clock,
        )
        if owed
        else {}
    )
    walk = sorted({d for t, sessions in owed.items() if t not in fetch_failures for d in sessions} | {latest})
    due = {t: set(sessions) for t, sessions in owed.items()}
    outcomes = []
    for session in walk:
        if context.should_stop():
            raise CycleInterrupted
        todo = [t for t in context.tickers if session in due.get(t, ())]
        outcomes.append(run_cycle(context, session, tickers=todo, prefetch_failures=fetch_failures))
    return outcomes


def _start_newcomers(context: CycleContext, latest: date) -> None:
    """Starts the series of tickers new to the watch list, durably and before any work on them:
    from the first session the catch-up walks (the one after the latest forecast of any
    ticker), or from `latest` on a database with no forecast yet."""
    preset = context.preset.name
    with context.engine.begin() as connection:
        newcomers = series_store.unenrolled(preset, context.tickers, connection=connection)
        if not newcomers:
            return
        last = prediction_store.latest_as_of(preset, connection=connection)
        start = latest if last is None or last >= latest else calendar.next_session(last)
        series_store.enroll(preset, newcomers, start, connection=connection, now=context.clock())
    log.info(
        "%d ticker(s) new to the watch list, forecast from %s on: %s", len(newcomers), start, ", ".join(newcomers[:10])
    )


def owed_sessions(context: CycleContext, latest: date) -> dict[str, list[date]]:
    """{ticker: the sessions, in order, it owes a forecast from}: every session from its series'
    first one through `latest` that has no forecast, except those given up after
    GIVE_UP_AFTER_FAILURES failures (its data for that session is missing or unusable)."""
    preset = context.preset.name
    owed: dict[str, list[date]] = {}
    with context.engine.connect() as connection:
        progress = series_store.progress(preset, context.tickers, latest, connection=connection)
        gaps = []
        for series in progress:
            if series.first_as_of > latest or series.forecasts == calendar.count_sessions(series.first_as_of, latest):
                continue
            if series.last_as_of is None:
                owed[series.ticker] = calendar.sessions_between(series.first_as_of, latest)
            elif series.forecasts == calendar.count_sessions(series.first_as_of, series.last_as_of):
                owed[series.ticker] = calendar.sessions_between(calendar.next_session(series.last_as_of), latest)
            else:
                gaps.append(series)
        if gaps:
            made = series_store.forecast_sessions(
                preset, [s.ticker for s in gaps], min(s.first_as_of for s in gaps), latest, connection=connection
            )
            for series in gaps:
                owed[series.ticker] = [
                    d for d in calendar.sessions_between(series.first_as_of, latest) if d not in made[series.ticker]
                ]
        given_up = series_store.given_up(preset, list(owed), connection=connection, attempts=GIVE_UP_AFTER_FAILURES)
    owed = {t: [d for d in sessions if (t, d) not in given_up] for t, sessions in owed.items()}
    return {t: sessions for t, sessions in owed.items() if sessions}
