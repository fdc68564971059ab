"""Restatements, told by the overlap: what the source now says about sessions already stored.

Each fetch asks again for a ticker's latest stored sessions (FORECASTER_OVERLAP_SESSIONS). On
those sessions the ratio fetched close / stored close says what happened since they were stored:

- 1 everywhere: nothing.
- one constant c ≠ 1: the source restated the whole history (a dividend or a split going ex
  after the stored sessions, adjusted back as yfinance's auto_adjust does): every stored close is
  multiplied by c, so the stored history stays in one price basis.
- a step from c to 1 (or between two constants) at a session e inside the overlap: the action
  went ex on e; the stored closes before e are multiplied by c.
- a ratio that leaves its neighbours' and comes back (at most two sessions, or the oldest or
  newest session alone): a corrected close (a bad tick Yahoo has since fixed), replaced alone.

The stored closes before the overlap take the ratio of its oldest run (that is where the
adjustments of older actions show). Every constant ratio of two closes cancels in a return, so
after the rebase every daily return of the stored history is the source's own, whatever was
adjusted when. The fetched rows of the overlap then replace the stored ones (their values exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from forecaster.store.price_events import PriceEvent
from forecaster.store.prices import Rebase

#: Relative difference under which two ratios are the same restatement.
SAME_RATIO = 1e-7
#: A run of at most this many sessions whose ratio differs from its neighbours is a correction.
CORRECTION_SESSIONS = 2


@dataclass(frozen=True)
class Reconciled:
    rebases: list[Rebase]  # stored closes to multiply, per ticker and range of sessions
    events: list[PriceEvent]


@dataclass(frozen=True)
class _Run:
    first: date
    last: date
    ratio: float
    length: int


def reconcile(stored: pl.DataFrame, fetched: pl.DataFrame) -> Reconciled:
    """stored and fetched: (ticker, session_date, close) of the overlap; the sessions both hold are compared."""
    both = stored.join(fetched.select("ticker", "session_date", "close"), on=["ticker", "session_date"], suffix="_now")
    ratios = both.with_columns((pl.col("close_now") / pl.col("close")).alias("ratio")).sort("ticker", "session_date")
    moved = ratios.filter(((pl.col("ratio") - 1).abs() > SAME_RATIO).any().over("ticker"))
    rebases: list[Rebase] = []
    events: list[PriceEvent] = []
    for (ticker,), part in moved.group_by("ticker", maintain_order=True):
        runs = _runs(part["session_date"].to_list(), part["ratio"].to_list())
        ticker_rebases, ticker_events = _explain(str(ticker), runs, part)
        rebases += ticker_rebases
        events += ticker_events
    return Reconciled(rebases, events)


def _runs(days: list[date], ratios: list[float]) -> list[_Run]:
    """Consecutive sessions of the same ratio, oldest first."""
    runs: list[_Run] = []
    for day, ratio in zip(days, ratios, strict=True):
        if runs and abs(ratio / runs[-1].ratio - 1) <= SAME_RATIO:
            last = runs[-1]
            runs[-1] = _Run(last.first, day, last.ratio, last.length + 1)
        else:
            runs.append(_Run(day, day, ratio, 1))
    return runs


def _is_correction(runs: list[_Run], k: int) -> bool:
    """A short run whose neighbours agree with each other (or, at an end, a single session)."""
    run = runs[k]
    if run.length > CORRECTION_SESSIONS or len(runs) == 1:
        return False
    before = runs[k - 1].ratio if k > 0 else None
    after = runs[k + 1].ratio if k + 1 < len(runs) else None
    if before is not None and after is not None:
        return abs(before / after - 1) <= SAME_RATIO
    return run.length == 1


def _explain(ticker: str, runs: list[_Run], part: pl.DataFrame) -> tuple[list[Rebase], list[PriceEvent]]:
    events = []
    for k, run in enumerate(runs):
        if not _is_correction(runs, k):
            continue
        for row in part.filter(pl.col("session_date").is_between(run.first, run.last)).iter_rows(named=True):
            detail = f"the source now gives {row['close_now']:.6g} for the close stored as {row['close']:.6g}: replaced"
            events.append(PriceEvent(ticker, row["session_date"], "correction", detail))
    basis = [run for k, run in enumerate(runs) if not _is_correction(runs, k)]
    if not basis:
        return [], events
    rebases = []
    for k, run in enumerate(basis):  # each run's factor applies from its first session to the next run's
        start = None if k == 0 else run.first
        end = basis[k + 1].first if k + 1 < len(basis) else None
        if abs(run.ratio - 1) > SAME_RATIO:
            rebases.append(Rebase(ticker, start, end, run.ratio))
    for older, newer in zip(basis, basis[1:], strict=False):
        factor = older.ratio / newer.ratio
        detail = f"the closes before this session were restated by {factor:.6g} (a dividend or a split): rebased"
        events.append(PriceEvent(ticker, newer.first, "restatement", detail, factor))
    if len(basis) == 1 or abs(basis[-1].ratio - 1) > SAME_RATIO:
        factor, after = basis[-1].ratio, basis[-1].last
        detail = f"every stored close up to {after} was restated by {factor:.6g} (a dividend or a split): rebased"
        events.append(PriceEvent(ticker, after, "restatement", detail, factor))
    return rebases, events
