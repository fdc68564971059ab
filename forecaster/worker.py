"""What a worker does: claim a cycle's tickers, train them, write forecasts and model states.

A claim's tickers are trained in chunks through the batched trainer: warm-started
ones (a compatible state from an earlier session) for the preset's daily epochs,
new ones for its first-fit epochs. Each chunk's rows are written, with the 'done'
mark of their tasks, in one transaction; should that fail, its tickers are written
one by one so a single bad ticker is recorded and the rest are kept.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from forecaster import calendar
from forecaster.errors import CycleInterrupted, TickerFailure, one_line
from forecaster.model import intervals
from forecaster.model.cell import LANES, N_PARAMETERS, params_from_dict, params_to_dict
from forecaster.model.features import training_windows
from forecaster.model.forecasting import Forecast, fit_and_forecast, initial_params
from forecaster.model.presets import Preset
from forecaster.model.training import AdamState
from forecaster.store import model_states as state_store
from forecaster.store import prices as price_store
from forecaster.store import runs as run_store
from forecaster.store import tasks as task_store
from forecaster.store.tasks import Claim

log = logging.getLogger(__name__)

#: Samples × epochs trained per chunk: about half a second on two cores, so a stop
#: request waits at most that long and memory stays bounded whatever the ticker count.
CHUNK_SAMPLE_EPOCHS = 20_000_000
#: Chunks are whole numbers of SIMD blocks, one block per core: a block costs the same full or not.
CHUNK_TICKERS = 2 * LANES


@dataclass(frozen=True)
class WarmStart:
    params: np.ndarray  # (12,)
    adam: AdamState | None  # one ticker's row, or None to start Adam afresh
    interval_state: dict[str, Any] | None  # the interval method's state after the previous session


def _warm_start(state: state_store.StoredState, preset: Preset) -> WarmStart | None:
    """The state as arrays, or None when it cannot be trusted (then the ticker is refitted)."""
    if state.config_hash != preset.config_hash:
        log.info(
            "%s: stored state is from another configuration of preset %s; refitting from scratch",
            state.ticker,
            preset.name,
        )
        return None
    try:
        if state.unreadable:
            raise ValueError(state.unreadable)
        params = params_from_dict(state.params)
        adam = None
        if preset.carry_optimizer_state and state.optimizer_state:
            adam = AdamState(
                step=np.array([int(state.optimizer_state["step"])], dtype=np.int64),
                exp_avg=np.array([state.optimizer_state["exp_avg"]], dtype=np.float64).reshape(1, N_PARAMETERS),
                exp_avg_sq=np.array([state.optimizer_state["exp_avg_sq"]], dtype=np.float64).reshape(1, N_PARAMETERS),
            )
            if not (np.all(np.isfinite(adam.exp_avg)) and np.all(adam.exp_avg_sq >= 0)):
                raise ValueError("optimizer state out of range")
        if not np.all(np.isfinite(params)):
            raise ValueError("non-finite parameters")
    except (KeyError, TypeError, ValueError) as error:
        log.warning(
            "%s: stored state trained through %s is unreadable (%s); refitting from scratch",
            state.ticker,
            state.trained_through,
            error,
        )
        return None
    return WarmStart(params, adam, state.interval_state)


def _load_closes(connection: sa.Connection, tickers: Sequence[str], preset: Preset, as_of: date) -> pl.DataFrame:
    """The closes a fit through `as_of` can use: the last window + lags sessions."""
    start = calendar.sessions_back(as_of, preset.window + preset.lags)
    return price_store.load_closes(tickers, connection=connection, start=start, end=as_of)


def _check_history(
    closes: pl.DataFrame, tickers: Sequence[str], preset: Preset, as_of: date
) -> dict[str, TickerFailure]:
    """Tickers that cannot be forecast from `as_of`: no close on it, or too few closes."""
    summary = (
        pl.DataFrame({"ticker": list(tickers)}, schema={"ticker": pl.String})
        .join(
            closes.group_by("ticker").agg(pl.len().alias("count"), pl.col("session_date").max().alias("last")),
            on="ticker",
            how="left",
        )
        .filter(pl.col("last").is_null() | (pl.col("last") != as_of) | (pl.col("count") < preset.lags + 1))
    )
    failures = {}
    for ticker, count, last in summary.iter_rows():
        if last != as_of:
            failures[ticker] = TickerFailure("validate", f"no close for {as_of} (latest stored: {last})")
        else:
            failures[ticker] = TickerFailure("validate", f"{count} closes stored, need at least {preset.lags + 1}")
    return failures


def _chunks(tickers: list[str], preset: Preset, epochs: int) -> list[list[str]]:
    size = max(CHUNK_TICKERS, CHUNK_SAMPLE_EPOCHS // (preset.window * epochs) // CHUNK_TICKERS * CHUNK_TICKERS)
    return [tickers[i : i + size] for i in range(0, len(tickers), size)]


def _fit_chunk(
    closes: pl.DataFrame, tickers: list[str], preset: Preset, epochs: int, warm: dict[str, WarmStart]
) -> Forecast:
    windows = training_windows(
        closes.filter(pl.col("ticker").is_in(tickers)).sort("ticker", "session_date"),
        lags=preset.lags,
        window=preset.window,
    )
    params = initial_params(len(windows.tickers))
    adam = AdamState.fresh(len(windows.tickers))
    for k, ticker in enumerate(windows.tickers):
        start = warm.get(ticker)
        if start is not None:
            params[k] = start.params
            if start.adam is not None:
                adam.step[k], adam.exp_avg[k], adam.exp_avg_sq[k] = (
                    start.adam.step[0],
                    start.adam.exp_avg[0],
                    start.adam.exp_avg_sq[0],
                )
    return fit_and_forecast(windows, preset, epochs=epochs, params=params, adam=adam)


def _intervals(
    closes: pl.DataFrame, forecast: Forecast, preset: Preset, warm: dict[str, WarmStart], target: date
) -> tuple[intervals.Bounds, list[dict[str, Any]]]:
    """The prediction intervals of a chunk's forecasts, and each ticker's interval state to store:
    one step of forecaster.model.intervals from the state it had after the previous session
    (none after a refit from scratch: its old errors belong to another model)."""
    previous = [warm[t].interval_state if t in warm else None for t in forecast.tickers]
    state = intervals.state_from_json(previous)
    window = intervals.closes_matrix(closes, forecast.tickers, preset.window + preset.lags)  # (tickers, closes)
    realised = intervals.realised_closes(state, forecast.tickers, closes)  # (tickers,)
    bounds, state = intervals.interval_step(state, realised, window, forecast.predicted_close, target)
    return bounds, intervals.state_to_json(state)


def _interval(bounds: intervals.Bounds, k: int) -> state_store.PredictionInterval | None:
    method = bounds.method[k]
    if method is None:
        return None
    return state_store.PredictionInterval(
        lower_80=float(bounds.lower_80[k]),
        upper_80=float(bounds.upper_80[k]),
        lower_95=float(bounds.lower_95[k]),
        upper_95=float(bounds.upper_95[k]),
        method=method,
    )


def _result_rows(
    forecast: Forecast,
    preset: Preset,
    bounds: intervals.Bounds,
    interval_states: list[dict[str, Any]],
    *,
    as_of: date,
    target: date,
    created_at: datetime,
) -> tuple[list[state_store.TrainingResultRow], dict[str, TickerFailure]]:
    """One row per ticker trained well; run_id is set when the row is written (see _save)."""
    rows, failures = [], {}
    for k, ticker in enumerate(forecast.tickers):
        predicted = float(forecast.predicted_close[k])
        if not (
            np.isfinite(predicted)
            and np.all(np.isfinite(forecast.params[k]))
            and np.all(np.isfinite(forecast.losses[k]))
        ):
            failures[ticker] = TickerFailure("train", "training diverged (non-finite loss, parameters or forecast)")
            continue
        rows.append(
            state_store.TrainingResultRow(
                ticker=ticker,
                preset=preset.name,
                trained_through=as_of,
                params=params_to_dict(forecast.params[k]),
                optimizer_state={
                    "step": int(forecast.adam.step[k]),
                    "exp_avg": [float(v) for v in forecast.adam.exp_avg[k]],
                    "exp_avg_sq": [float(v) for v in forecast.adam.exp_avg_sq[k]],
                },
                config_hash=preset.config_hash,
                losses=[float(v) for v in forecast.losses[k]],
                as_of=as_of,
                target_session=target,
                predicted_close=predicted,
                last_close=float(forecast.last_close[k]),
                run_id=0,
                created_at=created_at,
                interval=_interval(bounds, k),
                interval_state=interval_states[k],
            )
        )
    return rows, failures


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


def _save(connection: sa.Connection, claim: Claim, rows: list[state_store.TrainingResultRow]) -> None:
    """Results and the 'done' mark of their tasks, in the caller's transaction: only for the tasks
    the claim still holds, under the run each task belongs to now."""
    owned = task_store.complete(claim, [row.ticker for row in rows], "done", connection=connection)
    state_store.save_training_results(
        [dataclasses.replace(row, run_id=owned[row.ticker]) for row in rows if row.ticker in owned],
        connection=connection,
    )


def _write(engine: sa.Engine, claim: Claim, rows: list[state_store.TrainingResultRow]) -> dict[str, TickerFailure]:
    """Writes all rows in one transaction; if that fails, one ticker per transaction."""
    try:
        with engine.begin() as connection:
            _save(connection, claim, rows)
        return {}
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            raise  # the database is gone: no ticker can be written, let the caller retry the cycle
        log.warning("writing %d tickers together failed (%s); writing them one by one", len(rows), one_line(error))
    failures = {}
    for row in rows:
        try:
            with engine.begin() as connection:
                _save(connection, claim, [row])
        except sa.exc.DBAPIError as error:
            if error.connection_invalidated:
                raise
            failures[row.ticker] = TickerFailure("write", one_line(error))
    return failures


def process_claim(
    engine: sa.Engine,
    claim: Claim,
    preset: Preset,
    *,
    clock: Callable[[], datetime],
    lease: timedelta,
    should_stop: Callable[[], bool],
) -> None:
    """Trains, forecasts and stores every ticker of a claim, chunk by chunk; marks each task
    done with its rows, or failed with its reason, and renews the lease of the rest after each
    chunk. On a stop request the tickers not yet written are handed back (pending) for the
    next worker or start."""
    as_of, target = claim.as_of, calendar.next_session(claim.as_of)
    with engine.connect() as connection:
        closes = _load_closes(connection, claim.tickers, preset, as_of)
        states = state_store.load_latest_states(claim.tickers, preset.name, connection=connection, before=as_of)
    failures = _check_history(closes, claim.tickers, preset, as_of)
    _record_failures(engine, claim, failures)
    ready = [t for t in claim.tickers if t not in failures]
    warm = {t: start for t in ready if t in states and (start := _warm_start(states[t], preset)) is not None}
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
        forecast = _fit_chunk(closes, chunk, preset, epochs, warm)
        bounds, interval_states = _intervals(closes, forecast, preset, warm, target)
        rows, chunk_failures = _result_rows(
            forecast, preset, bounds, interval_states, as_of=as_of, target=target, created_at=clock()
        )
        chunk_failures |= _write(engine, claim, rows)
        _record_failures(engine, claim, chunk_failures)
        with engine.begin() as connection:
            task_store.extend(claim, connection=connection, until=clock() + lease)


def work(
    engine: sa.Engine,
    preset: Preset,
    *,
    worker: str,
    clock: Callable[[], datetime],
    lease: timedelta,
    claim_size: int,
    should_stop: Callable[[], bool],
    training_lock: threading.Lock,
    as_of: date | None = None,
) -> int:
    """Claims and processes tasks until none is claimable (of cycle `as_of`, or of any cycle);
    returns how many claims it processed. One claim at a time per process (`training_lock`):
    the compiled trainer already uses every core. Tasks whose workers kept dying are failed
    here, with the reason recorded in their run."""
    processed = 0
    while not should_stop():
        with training_lock:
            with engine.begin() as connection:
                now = clock()
                for task in task_store.fail_abandoned(preset.name, connection=connection, now=now):
                    reason = f"its worker stopped {task.attempts} times while training it (last: {task.worker})"
                    run_store.record_failures(task.run_id, {task.ticker: ("train", reason)}, connection=connection)
                claim = task_store.claim(
                    preset.name,
                    connection=connection,
                    worker=worker,
                    now=now,
                    lease=lease,
                    limit=claim_size,
                    as_of=as_of,
                )
            if claim is None:
                return processed
            process_claim(engine, claim, preset, clock=clock, lease=lease, should_stop=should_stop)
        log.info("%s: trained %d ticker(s) of the cycle after %s", worker, len(claim.tickers), claim.as_of)
        processed += 1
    raise CycleInterrupted
