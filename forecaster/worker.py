"""What a worker does: claim a cycle's tickers, run the forecast step on them, write the results.

A claim's closes and checkpoints are read once; its tickers go through the forecast step
(forecaster.model.step) in chunks, warm-started ones (a usable checkpoint from an earlier
session) for the preset's daily epochs, new ones for its first-fit epochs. Each chunk's
results are written with the 'done' mark of their tasks in one transaction, only for the tasks
the claim still holds; should that fail, its tickers are written one by one so a single bad
ticker is recorded and the rest are kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date

import sqlalchemy as sa

from forecaster import stages
from forecaster.calendar import trading_calendar
from forecaster.context import CycleContext
from forecaster.errors import CycleInterrupted, TickerFailure, one_line
from forecaster.model.cell import LANES
from forecaster.model.checkpoint import Checkpoint, UnreadableCheckpoint, refit_reason
from forecaster.model.closes import ClosesMatrix
from forecaster.model.presets import Preset
from forecaster.model.step import forecast_step
from forecaster.store import prices as price_store
from forecaster.store import runs as run_store
from forecaster.store import tasks as task_store
from forecaster.store.model_states import load_latest_checkpoints
from forecaster.store.results import TickerResult, write_results
from forecaster.store.retention import Retention
from forecaster.store.tasks import Claim

log = logging.getLogger(__name__)

#: Samples × epochs trained per chunk: about half a second on two cores, so a stop
#: request waits at most that long and memory stays bounded whatever the ticker count.
CHUNK_SAMPLE_EPOCHS = 20_000_000
#: Chunks are whole numbers of SIMD blocks, one block per core: a block costs the same full or not.
CHUNK_TICKERS = 2 * LANES


def _warm_start(ticker: str, stored: Checkpoint | UnreadableCheckpoint | None, preset: Preset) -> Checkpoint | None:
    """The checkpoint to warm-start from, or None for a first fit (with a log line when a stored
    one is refused)."""
    if stored is None:
        return None
    if isinstance(stored, UnreadableCheckpoint):
        log.warning("%s: its stored state is unreadable (%s); refitting from scratch", ticker, stored)
        return None
    reason = refit_reason(stored, preset)
    if reason is not None:
        log.info(
            "%s: stored state trained through %s %s; refitting from scratch", ticker, stored.trained_through, reason
        )
        return None
    return stored


def _unforecastable(matrix: ClosesMatrix, preset: Preset, as_of: date) -> dict[str, TickerFailure]:
    """Tickers that cannot be forecast from `as_of`: no close on it yet (retried, never given up),
    or too few closes."""
    failures = {}
    for ticker, count, last in zip(matrix.tickers, matrix.counts, matrix.last_dates(), strict=True):
        if last != as_of:
            failures[ticker] = TickerFailure("prices", f"no close for {as_of} yet (latest stored: {last})")
        elif count < preset.lags + 1:
            failures[ticker] = TickerFailure("validate", f"{count} closes stored, need at least {preset.lags + 1}")
    return failures


def _chunks(tickers: list[str], preset: Preset, epochs: int) -> list[list[str]]:
    size = max(CHUNK_TICKERS, CHUNK_SAMPLE_EPOCHS // (preset.window * epochs) // CHUNK_TICKERS * CHUNK_TICKERS)
    return [tickers[i : i + size] for i in range(0, len(tickers), size)]


def _record_failures(engine: sa.Engine, claim: Claim, failures: dict[str, TickerFailure]) -> None:
    """Marks the claim's failed tickers' tasks failed and records why, for those it still holds."""
    if failures:
        with engine.begin() as connection:
            owned = task_store.complete(claim, list(failures), "failed", connection=connection)
            for run_id in set(owned.values()):
                run_store.record_failures(
                    run_id,
                    {t: (f.stage, f.reason) for t, f in failures.items() if owned.get(t) == run_id},
                    connection=connection,
                )


def _save(connection: sa.Connection, claim: Claim, results: Sequence[TickerResult], retention: Retention) -> None:
    """Results and the 'done' mark of their tasks, in the caller's transaction: only for the tasks
    the claim still holds, under the run each task belongs to now."""
    owned = task_store.complete(claim, [r.step.ticker for r in results], "done", connection=connection)
    write_results(
        [
            TickerResult(r.preset, r.as_of, r.target_session, owned[r.step.ticker], r.created_at, r.step)
            for r in results
            if r.step.ticker in owned
        ],
        connection=connection,
        retention=retention,
    )


def _write(
    engine: sa.Engine, claim: Claim, results: list[TickerResult], retention: Retention
) -> dict[str, TickerFailure]:
    """Writes all results in one transaction; if that fails, one ticker per transaction."""
    try:
        with engine.begin() as connection:
            _save(connection, claim, results, retention)
        return {}
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            raise  # the database is gone: no ticker can be written, let the caller retry the cycle
        log.warning("writing %d tickers together failed (%s); writing them one by one", len(results), one_line(error))
    failures = {}
    for result in results:
        try:
            with engine.begin() as connection:
                _save(connection, claim, [result], retention)
        except sa.exc.DBAPIError as error:
            if error.connection_invalidated:
                raise
            failures[result.step.ticker] = TickerFailure("write", one_line(error))
    return failures


def process_claim(context: CycleContext, claim: Claim, should_stop: Callable[[], bool]) -> int:
    """Trains, forecasts and stores every ticker of a claim, chunk by chunk; marks each task
    done with its rows, or failed with its reason, and renews the lease of the rest after each
    chunk; returns how many failed. On a stop request the tickers not yet written are handed
    back (pending) for the next worker or start."""
    engine, preset = context.engine, context.preset
    market = trading_calendar(claim.calendar)
    as_of, target = claim.as_of, market.next_session(claim.as_of)
    width = preset.window + preset.lags
    with stages.timed("train", claim.calendar, as_of), engine.connect() as connection:  # its inputs
        closes = price_store.load_closes(
            claim.tickers, connection=connection, start=market.sessions_back(as_of, width), end=as_of
        )
        stored = load_latest_checkpoints(claim.tickers, preset.name, connection=connection, before=as_of)
    matrix = ClosesMatrix.from_frame(closes, claim.tickers, width)
    failures = _unforecastable(matrix, preset, as_of)
    _record_failures(engine, claim, failures)
    failed = len(failures)
    ready = [t for t in claim.tickers if t not in failures]
    warm = {t: checkpoint for t in ready if (checkpoint := _warm_start(t, stored.get(t), preset)) is not None}
    chunks = [
        (chunk, epochs)
        for group, epochs in (
            ([t for t in ready if t in warm], preset.epochs_per_session),
            ([t for t in ready if t not in warm], preset.epochs_first_fit),
        )
        for chunk in _chunks(group, preset, epochs)
    ]
    for done, (chunk, epochs) in enumerate(chunks):
        if should_stop():
            with engine.begin() as connection:
                task_store.release(claim, [t for c, _ in chunks[done:] for t in c], connection=connection)
            raise CycleInterrupted
        started = time.perf_counter()
        with stages.timed("train", claim.calendar, as_of):
            step = forecast_step(
                matrix.rows(chunk),
                preset,
                epochs=epochs,
                warm=[warm.get(t) for t in chunk],
                targets=[target] * len(chunk),
            )
        log.debug(
            "%s: %d ticker(s) trained %d epochs in %.2f s",
            context.worker_id,
            len(chunk),
            epochs,
            time.perf_counter() - started,
        )
        created_at = context.clock()
        results = [TickerResult(preset.name, as_of, target, 0, created_at, forecast) for forecast in step.forecasts]
        chunk_failures = {
            t: TickerFailure("train", "training diverged (non-finite loss, parameters or forecast)")
            for t in step.diverged
        }
        with stages.timed("write", claim.calendar, as_of):
            chunk_failures |= _write(engine, claim, results, context.retention)
            _record_failures(engine, claim, chunk_failures)
        failed += len(chunk_failures)
        with engine.begin() as connection:
            task_store.extend(claim, connection=connection, until=context.clock() + context.lease)
    return failed


def work(context: CycleContext, *, as_of: date | None = None, should_stop: Callable[[], bool] | None = None) -> int:
    """Claims and processes tasks until none is claimable (of cycle `as_of`, or of any cycle);
    returns how many claims it processed. It stops between ticker chunks on a stop request, or
    when `should_stop` says so. One claim at a time per process (`context.training_lock`).
    Tasks whose workers kept dying are failed here, with the reason recorded in their run."""

    def stopping() -> bool:
        return context.should_stop() or (should_stop is not None and should_stop())

    processed = 0
    while not stopping():
        with context.training_lock:
            with context.engine.begin() as connection:
                now = context.clock()
                for task in task_store.fail_abandoned(context.preset.name, connection=connection, now=now):
                    reason = f"its worker stopped {task.attempts} times while training it (last: {task.worker})"
                    run_store.record_failures(task.run_id, {task.ticker: ("train", reason)}, connection=connection)
                claim = task_store.claim(
                    context.preset.name,
                    connection=connection,
                    worker=context.worker_id,
                    now=now,
                    lease=context.lease,
                    limit=context.claim_size,
                    as_of=as_of,
                )
            if claim is None:
                return processed
            failed = process_claim(context, claim, stopping)
        log.info(
            "%s: claim of %d ticker(s) of the cycle after %s done: %d forecast, %d failed",
            context.worker_id,
            len(claim.tickers),
            claim.as_of,
            len(claim.tickers) - failed,
            failed,
        )
        processed += 1
    raise CycleInterrupted
