"""One daily cycle, from prices to stored forecasts; backfill and catch-up walk it session by session.

A cycle for session D is a pure function of (prices through D, each ticker's model
state trained through the session before D, the preset). It skips tickers that
already have a forecast for the session after D, so running it twice, or again
after a crash, writes each row once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import polars as pl
import sqlalchemy as sa

from forecaster import calendar
from forecaster.worker import CycleInterrupted, TickerFailure, process_claim
from forecaster.model.presets import Preset
from forecaster.prices.checks import check_fetched_prices
from forecaster.prices.sources.base import PriceSource
from forecaster.store import predictions as prediction_store
from forecaster.store import prices as price_store
from forecaster.store import runs as run_store
from forecaster.store import tasks as task_store
from forecaster.store.runs import RunFailure

log = logging.getLogger(__name__)

#: How often a cycle whose remaining tasks other workers hold checks on them.
DRAIN_POLL_SECONDS = 0.5


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CycleContext:
    """What every cycle of one process shares."""

    engine: sa.Engine
    source: PriceSource
    tickers: Sequence[str]
    preset: Preset
    history_sessions: int = 300  # how far back to fetch a ticker seen for the first time
    clock: Callable[[], datetime] = utc_now
    host: str = field(default_factory=socket.gethostname)
    claim_size: int = 500  # tickers a worker leases at once
    lease: timedelta = timedelta(seconds=120)  # a claim not finished by then is taken over by another worker
    stop_event: threading.Event = field(default_factory=threading.Event)
    training_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Runs this process started but could not mark finished (the database went away);
    #: the next cycle that reaches the database records them as failed.
    unfinished_runs: set[int] = field(default_factory=set)

    @property
    def worker_id(self) -> str:
        return f"{self.host}:{os.getpid()}"

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleeps up to `seconds`; True when a stop was requested meanwhile."""
        return self.stop_event.wait(seconds)


@dataclass(frozen=True)
class CycleOutcome:
    run_id: int
    as_of: date
    target_session: date
    status: str  # ok | partial | failed | interrupted
    tickers_ok: int
    tickers_failed: int
    tickers_skipped: int


def ensure_prices(
    context: CycleContext, tickers: Sequence[str], through: date, *, first_session: date | None = None
) -> dict[str, TickerFailure]:
    """Fetches and stores every close missing for `tickers` up to `through`, in one source call.

    A ticker stored through `through` already is not fetched; one never seen is fetched
    from `history_sessions` before `first_session` (default `through`), the first session
    to forecast from. Returns the tickers the source failed on or whose prices were rejected.
    """
    with context.engine.connect() as connection:
        last_stored = price_store.latest_closes(tickers, connection=connection)
    latest = {ticker: session_date for ticker, (session_date, _) in last_stored.items()}
    stale = [t for t in tickers if latest.get(t) is None or latest[t] < through]
    if not stale:
        return {}
    first_needed = min(
        latest[t] + timedelta(days=1) if t in latest
        else calendar.sessions_back(first_session or through, context.history_sessions)
        for t in stale
    )
    result = context.source.fetch(stale, first_needed, through)
    failures = {t: TickerFailure("fetch", reason) for t, reason in result.failures.items()}
    # Only sessions after each ticker's last stored one: the first is checked against that close.
    after_stored = pl.col("session_date") > pl.col("ticker").replace_strict(latest, default=date.min, return_dtype=pl.Date)
    fetched = result.prices.filter(pl.col("ticker").is_in(stale) & after_stored)
    clean, rejected = check_fetched_prices(fetched, last_stored=last_stored)
    revised = _revised_histories(context, fetched, rejected, last_stored, through)
    for ticker, history in revised.items():
        del rejected[ticker]
        clean = pl.concat([clean, history], how="vertical_relaxed")
    failures |= {t: TickerFailure("validate", reason) for t, reason in rejected.items()}
    if clean.height:
        with context.engine.begin() as connection:
            price_store.upsert_prices(clean, connection=connection, source=context.source.name, fetched_at=context.clock())
    return failures


def _revised_histories(
    context: CycleContext,
    fetched: pl.DataFrame,
    rejected: dict[str, str],
    last_stored: dict[str, tuple[date, float]],
    through: date,
) -> dict[str, pl.DataFrame]:
    """Fresh histories of the tickers whose new closes jump only against the stored ones.

    That is how a split shows once the source adjusts its history (yfinance does): the
    stored closes are the stale ones. Such a ticker's whole stored span is fetched again
    and, if it holds no jump itself, replaces the stored rows.
    """
    candidates = [t for t in rejected if t in last_stored]
    if not candidates:
        return {}
    _, jumps_within_fetch = check_fetched_prices(fetched.filter(pl.col("ticker").is_in(candidates)))
    boundary = [t for t in candidates if t not in jumps_within_fetch]
    if not boundary:
        return {}
    with context.engine.connect() as connection:
        start = price_store.earliest_date(boundary, connection=connection)
    result = context.source.fetch(boundary, start, through)
    histories, still_bad = check_fetched_prices(result.prices.filter(pl.col("ticker").is_in(boundary)))
    revised = {}
    for (ticker,), history in histories.partition_by("ticker", as_dict=True).items():
        if ticker not in still_bad and history["session_date"].max() == through:
            log.warning("%s: its closes jump against the stored ones (a split?); refetched and replaced its %d stored sessions", ticker, history.height)
            revised[ticker] = history
    return revised


def work(context: CycleContext, *, as_of: date | None = None) -> int:
    """Claims and processes tasks until none is claimable (of cycle `as_of`, or of any cycle);
    returns how many claims it processed. One claim at a time per process: the compiled
    trainer already uses every core."""
    processed = 0
    while not context.should_stop():
        with context.training_lock:
            with context.engine.begin() as connection:
                claim = task_store.claim(
                    context.preset.name, connection=connection, worker=context.worker_id, now=context.clock(),
                    lease=context.lease, limit=context.claim_size, as_of=as_of,
                )
            if claim is None:
                return processed
            process_claim(context.engine, claim, context.preset, clock=context.clock, should_stop=context.should_stop)
        processed += 1
    raise CycleInterrupted


def _drain(context: CycleContext, as_of: date) -> None:
    """Works on the cycle's tasks until every one is done or failed, including those other
    workers hold (their expired leases are claimed here too)."""
    while True:
        work(context, as_of=as_of)
        with context.engine.connect() as connection:
            if task_store.open_tasks(context.preset.name, as_of, connection=connection) == 0:
                return
        if context.wait(DRAIN_POLL_SECONDS):
            raise CycleInterrupted


def run_cycle(
    context: CycleContext,
    as_of: date,
    *,
    kind: str = "daily",
    prefetch_failures: dict[str, TickerFailure] | None = None,
) -> CycleOutcome:
    """Forecasts the session after `as_of` for every ticker that has no forecast for it yet.

    Missing prices are fetched first, unless the caller already fetched them
    (`prefetch_failures` then holds what that fetch could not get). The tickers to train
    become tasks that this process, and any other worker on the same database, claims.
    """
    if not calendar.is_session(as_of):
        raise ValueError(f"{as_of} is not a trading session")
    target = calendar.next_session(as_of)
    preset = context.preset
    with context.engine.begin() as connection:
        for lost in sorted(context.unfinished_runs):
            run_store.finish_run(
                lost, connection=connection, status="failed", tickers_ok=0, tickers_failed=0, tickers_skipped=0,
                error="lost the database connection mid-run; a later run redid its work", finished_at=context.clock(),
            )
        context.unfinished_runs.clear()
        run_id = run_store.start_run(
            kind, connection=connection, as_of=as_of, preset=preset.name, host=context.host, started_at=context.clock()
        )
        done = prediction_store.predicted_tickers(preset.name, target, connection=connection)
    context.unfinished_runs.add(run_id)
    todo = sorted(set(context.tickers) - done)
    status, error = "ok", None
    try:
        if todo:
            if prefetch_failures is None:
                failures = ensure_prices(context, todo, as_of)
            else:
                failures = {t: f for t, f in prefetch_failures.items() if t in todo}
            with context.engine.begin() as connection:
                run_store.record_failures(run_id, {t: (f.stage, f.reason) for t, f in failures.items()}, connection=connection)
                task_store.enqueue(preset.name, as_of, run_id, [t for t in todo if t not in failures], connection=connection)
            _drain(context, as_of)
    except CycleInterrupted:
        status, error = "interrupted", "stop requested"
        raise
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with context.engine.begin() as connection:
            written = prediction_store.count_for_run(run_id, connection=connection)
            failures = run_store.run_failures_of(run_id, connection=connection)
            if status == "ok" and failures:
                status = "partial" if written else "failed"
            outcome = CycleOutcome(run_id, as_of, target, status, written, len(failures), len(done))
            run_store.finish_run(
                run_id, connection=connection, status=status, tickers_ok=outcome.tickers_ok,
                tickers_failed=outcome.tickers_failed, tickers_skipped=outcome.tickers_skipped,
                error=error, finished_at=context.clock(),
            )
            if status != "interrupted":
                task_store.clear(preset.name, as_of, connection=connection)
        context.unfinished_runs.discard(run_id)
        _log_outcome(outcome, failures)
    return outcome


def _log_outcome(outcome: CycleOutcome, failures: list[RunFailure]) -> None:
    log.info(
        "run %d %s: as of %s, forecast for %s: %d ok, %d failed, %d already done",
        outcome.run_id, outcome.status, outcome.as_of, outcome.target_session,
        outcome.tickers_ok, outcome.tickers_failed, outcome.tickers_skipped,
        extra={"event": "run", **{k: str(v) for k, v in vars(outcome).items()}},
    )
    for failure in failures:
        log.warning(
            "run %d: %s failed at %s: %s", outcome.run_id, failure.ticker, failure.stage, failure.reason,
            extra={"event": "ticker_failed", "run_id": outcome.run_id, "ticker": failure.ticker, "stage": failure.stage},
        )


def walk_sessions(
    context: CycleContext, sessions: Sequence[date], *, kind: str, on_cycle: Callable[[CycleOutcome], None] | None = None
) -> list[CycleOutcome]:
    """Runs the cycle for each session in order, after one fetch of everything the walk needs.

    A ticker the fetch failed on is recorded as failed in each cycle, not fetched again.
    """
    if not sessions:
        return []
    fetch_failures = ensure_prices(context, context.tickers, sessions[-1], first_session=sessions[0])
    outcomes = []
    for session in sessions:
        if context.should_stop():
            raise CycleInterrupted
        outcome = run_cycle(context, session, kind=kind, prefetch_failures=fetch_failures)
        outcomes.append(outcome)
        if on_cycle:
            on_cycle(outcome)
    return outcomes


def backfill(
    context: CycleContext, start: date, end: date, on_cycle: Callable[[CycleOutcome], None] | None = None
) -> list[CycleOutcome]:
    """The backtest: one cycle for every session from `start` to `end` inclusive."""
    return walk_sessions(context, calendar.sessions_between(start, end), kind="backfill", on_cycle=on_cycle)


def sessions_to_catch_up(context: CycleContext, latest: date) -> list[date]:
    """Every session after the last one forecast from, through `latest`; just `latest` on an empty database."""
    with context.engine.connect() as connection:
        last_done = prediction_store.latest_as_of(context.preset.name, connection=connection)
    if last_done is None:
        return [latest]
    return [d for d in calendar.sessions_between(calendar.next_session(last_done), latest)]


def catch_up(context: CycleContext, latest: date) -> list[CycleOutcome]:
    """Runs every missed session in order, then `latest` (which also retries its failed tickers)."""
    sessions = sessions_to_catch_up(context, latest) or [latest]
    return walk_sessions(context, sessions, kind="daily")
