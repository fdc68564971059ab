"""Storing what a cycle needs from the price source: one fetch per batch of tickers, checked, reconciled, then stored.

A ticker gets, in one source call for its batch:

- the closes after its last stored one through the session forecast from, and again its latest
  `overlap_sessions` stored sessions: where the source's closes differ there, it restated or
  corrected its history (forecaster.prices.restatements), and the stored history is brought
  to the source's basis before the new rows are stored;
- when a cycle must forecast it from an earlier session than its stored history supports (a new
  ticker, or a backfill of an older period), the history before its first stored close back to
  `history_sessions` sessions before that session.

The fetched rows pass the rules of forecaster.prices.checks. A close that moves beyond the jump
threshold is looked at again (a second fetch of that ticker): the same close twice is a real
move, stored and recorded as a price event, so no ticker stalls on one price; two different
closes reject the ticker for this cycle (it is fetched again by the next). A move of about ×100
or ÷100 that the second look confirms is a change of unit (pence and pounds), and a move that
undoes a split the source reports on that day is that split left unadjusted: either way the
ticker's earlier prices are rebased to the new basis instead. Nothing dated after the fetch's
last session is stored, so a bar of a session still trading never is.

A source that cannot answer (a price file gone bad under a running daemon, say) fails every
ticker at the fetch with one line; the cycle records it and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import polars as pl
import sqlalchemy as sa

from forecaster.calendar import TradingCalendar
from forecaster.errors import TickerFailure, UserError, one_line
from forecaster.price_frame import conform
from forecaster.prices.checks import SAME_CLOSE, Checked, check_fetched_prices
from forecaster.prices.restatements import reconcile
from forecaster.prices.sources.base import FetchResult, PriceSource
from forecaster.store import prices as price_store
from forecaster.store.price_events import PriceEvent, record_events
from forecaster.store.prices import Rebase

log = logging.getLogger(__name__)

#: A ticker's latest close is looked for among this many sessions first (see latest_closes).
_RECENT_SESSIONS = 30
#: Tickers fetched, checked and stored together: a first fetch of 100,000 tickers at once (300
#: sessions each) would hold 30 million rows in memory.
FETCH_BATCH_TICKERS = 2_000
#: Tickers whose fetched rows are checked together.
_CHECK_BATCH_TICKERS = 500
#: A confirmed move this close to ×100 or ÷100 is a change of unit, not a price move.
_UNIT_RATIO, _UNIT_TOLERANCE = 100.0, 0.02


@dataclass(frozen=True)
class PriceRules:
    history_sessions: int  # sessions of history before the first session a ticker is forecast from
    overlap_sessions: int  # latest stored sessions asked for again, to see restatements
    jump_threshold: float  # a move beyond this fraction is looked at twice


@dataclass
class _Plan:
    """What each ticker asks of this fetch."""

    earlier: dict[str, date]  # ticker -> the first session of history it needs, before what is stored
    later: list[str]  # tickers with stored closes before `through`
    last: dict[str, tuple[date, float]]  # stored latest (session, close)
    first: dict[str, tuple[date, float]]  # stored earliest (session, close), for the `earlier` tickers
    overlap_from: dict[str, date] = field(default_factory=dict)  # later ticker -> first session asked again

    @property
    def tickers(self) -> list[str]:
        return sorted(set(self.earlier) | set(self.later))


def ensure_prices(
    engine: sa.Engine,
    source: PriceSource,
    first_sessions: Mapping[str, date],
    through: date,
    *,
    calendar: TradingCalendar,
    rules: PriceRules,
    clock: Callable[[], datetime],
) -> dict[str, TickerFailure]:
    """Fetches and stores what each ticker of `first_sessions` (all on `calendar`) lacks to be
    forecast from its session there through `through`, `FETCH_BATCH_TICKERS` tickers at a time
    (one source call and one transaction each). Returns the tickers the source failed on or
    whose prices could not be stored this time."""
    tickers = list(first_sessions)
    failures: dict[str, TickerFailure] = {}
    for k in range(0, len(tickers), FETCH_BATCH_TICKERS):
        batch = {t: first_sessions[t] for t in tickers[k : k + FETCH_BATCH_TICKERS]}
        try:
            failures |= _ensure_batch(engine, source, batch, through, calendar=calendar, rules=rules, clock=clock)
        except _SourceFailed as failed:  # it fails the batches after this one too: asked once, said once
            log.error("price source %s failed for %d ticker(s): %s", source.name, len(tickers) - k, failed.reason)
            return failures | dict.fromkeys(tickers[k:], TickerFailure("fetch", failed.reason))
    return failures


class _SourceFailed(Exception):
    """The source could not answer at all (a UserError, such as a price file gone bad)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ensure_batch(
    engine: sa.Engine,
    source: PriceSource,
    first_sessions: Mapping[str, date],
    through: date,
    *,
    calendar: TradingCalendar,
    rules: PriceRules,
    clock: Callable[[], datetime],
) -> dict[str, TickerFailure]:
    plan = _plan(engine, first_sessions, through, calendar, rules)
    wanted = plan.tickers
    if not wanted:
        return {}
    start = min([*plan.earlier.values(), *plan.overlap_from.values()])
    end = max([through, *(plan.first[t][0] for t in plan.earlier if t in plan.first)])
    result = _fetch(source, wanted, start, end)
    failures = {t: TickerFailure("fetch", reason) for t, reason in result.failures.items()}
    fetched = result.prices.filter(pl.col("ticker").is_in(wanted) & (pl.col("session_date") <= end))
    with engine.connect() as connection:
        later = [t for t in plan.later if t not in failures]
        stored = price_store.load_closes(later, connection=connection, start=start, end=through) if later else None
    overlap, new_rows = _split_overlap(fetched, plan)
    reconciled = reconcile(_in_overlap(stored, plan), overlap) if stored is not None else None
    rebases = list(reconciled.rebases) if reconciled else []
    events = _at_ex_dates(list(reconciled.events) if reconciled else [], new_rows, plan)
    events += _late_sessions(stored, overlap)
    checked = _check(pl.concat([overlap, new_rows], how="vertical_relaxed"), plan, calendar, rules, rebases)
    rows, unit_rebases = _confirm_jumps(source, checked, plan, start, end, events)
    rebases += unit_rebases
    failures |= {t: TickerFailure("prices", reason) for t, reason in checked.rejected.items() if t not in failures}
    rows = rows.filter(~pl.col("ticker").is_in(list(failures)))
    now = clock()
    with engine.begin() as connection:
        price_store.rebase_prices([r for r in rebases if r.ticker not in failures], connection=connection)
        if rows.height:
            price_store.upsert_prices(
                rows,
                connection=connection,
                source=source.name,
                fetched_at=now,
                new_tickers=[t for t in wanted if t not in plan.last],
            )
        record_events(
            [e for e in events + checked.events if e.ticker not in failures], connection=connection, seen_at=now
        )
        price_store.record_requested(
            {t: d for t, d in plan.earlier.items() if t not in failures}, connection=connection
        )
    _log_events(events)
    return failures


def _plan(
    engine: sa.Engine, first_sessions: Mapping[str, date], through: date, calendar: TradingCalendar, rules: PriceRules
) -> _Plan:
    tickers = list(first_sessions)
    needed = {t: calendar.sessions_back(d, rules.history_sessions) for t, d in first_sessions.items()}
    with engine.connect() as connection:
        asked = price_store.requested_from(tickers, connection=connection)
        earlier = {t: start for t, start in needed.items() if t not in asked or start < asked[t]}
        recently = calendar.sessions_back(through, _RECENT_SESSIONS)
        last = price_store.latest_closes(tickers, connection=connection, probably_since=recently)
        first = price_store.earliest_closes(list(earlier), connection=connection)
    later = [t for t in tickers if t in last and last[t][0] < through]
    plan = _Plan(earlier, later, last, first)
    plan.overlap_from = {t: calendar.sessions_back(last[t][0], rules.overlap_sessions) for t in later}
    return plan


def _fetch(source: PriceSource, tickers: list[str], start: date, end: date) -> FetchResult:
    """The source's answer; raises _SourceFailed, with its one line, when it cannot answer at all."""
    try:
        result = source.fetch(tickers, start, end)
    except UserError as error:
        raise _SourceFailed(f"the source failed: {one_line(error).removeprefix('UserError: ')}") from None
    return FetchResult(conform(result.prices), result.failures)


def _split_overlap(fetched: pl.DataFrame, plan: _Plan) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows of sessions already stored, asked again; every other row)."""
    last = pl.col("ticker").replace_strict({t: plan.last[t][0] for t in plan.later}, default=None, return_dtype=pl.Date)
    first = pl.col("ticker").replace_strict(plan.overlap_from, default=None, return_dtype=pl.Date)
    in_overlap = pl.col("ticker").is_in(plan.later) & pl.col("session_date").is_between(first, last)
    return fetched.filter(in_overlap), fetched.filter(~in_overlap.fill_null(False))


def _in_overlap(stored: pl.DataFrame | None, plan: _Plan) -> pl.DataFrame:
    assert stored is not None
    first = pl.col("ticker").replace_strict(plan.overlap_from, default=None, return_dtype=pl.Date)
    return stored.filter(pl.col("session_date") >= first)


def _at_ex_dates(events: list[PriceEvent], new_rows: pl.DataFrame, plan: _Plan) -> list[PriceEvent]:
    """A restatement of the whole stored history is dated on the ex-date of the action the source
    reports among the new sessions, when it reports one (else on the last stored session)."""
    actions = new_rows.filter((pl.col("dividends") > 0) | (pl.col("stock_splits") > 0))
    first_action = dict(actions.group_by("ticker").agg(pl.col("session_date").min()).iter_rows())
    return [
        replace(e, session_date=first_action[e.ticker])
        if e.kind == "restatement" and e.ticker in first_action and e.session_date == plan.last[e.ticker][0]
        else e
        for e in events
    ]


def _late_sessions(stored: pl.DataFrame | None, overlap: pl.DataFrame) -> list[PriceEvent]:
    """Sessions the source has now that were missing when the ticker's later sessions were stored."""
    if stored is None or overlap.is_empty():
        return []
    known = stored.select("ticker", "session_date")
    filled = overlap.filter(pl.col("close").is_not_null() & ~pl.col("close").is_nan()).join(
        known, on=["ticker", "session_date"], how="anti"
    )
    return [
        PriceEvent(t, d, "late", f"missing when later sessions were fetched; the source now has {c:.6g}: stored")
        for t, d, c in filled.select("ticker", "session_date", "close").iter_rows()
    ]


def _check(
    rows: pl.DataFrame, plan: _Plan, calendar: TradingCalendar, rules: PriceRules, rebases: Sequence[Rebase]
) -> Checked:
    """The checks of forecaster.prices.checks, a batch of tickers at a time: polars' sorts and
    groupings of a whole first fetch (5,000 tickers x 300 sessions) would otherwise double the
    cycle's peak memory. Moves within the overlap were accepted when they were stored: only the
    moves into new sessions are jumps to confirm."""
    next_stored = {t: (d, c * _factor_at(rebases, t, d)) for t, (d, c) in plan.first.items() if t in plan.earlier}
    last_stored = {t: (d, c * _factor_at(rebases, t, d)) for t, (d, c) in plan.last.items() if t in plan.later}
    tickers = sorted(set(rows["ticker"].unique()))
    parts = [
        check_fetched_prices(
            rows.filter(pl.col("ticker").is_in(batch)),
            calendar=calendar,
            jump_threshold=rules.jump_threshold,
            last_stored={t: last_stored[t] for t in batch if t in last_stored},
            next_stored={t: next_stored[t] for t in batch if t in next_stored},
        )
        for batch in (tickers[k : k + _CHECK_BATCH_TICKERS] for k in range(0, len(tickers), _CHECK_BATCH_TICKERS))
    ]
    jumps = pl.concat([part.jumps for part in parts]) if parts else Checked(rows).jumps
    last = pl.col("ticker").replace_strict(
        {t: d for t, (d, _) in plan.last.items()}, default=None, return_dtype=pl.Date
    )
    first = pl.col("ticker").replace_strict(
        {t: d for t, (d, _) in plan.first.items() if t in plan.earlier}, default=None, return_dtype=pl.Date
    )
    into_new = last.is_null() | (pl.col("session_date") > last) | (pl.col("session_date") <= first).fill_null(False)
    return Checked(
        rows=pl.concat([part.rows for part in parts], how="vertical_relaxed") if parts else rows,
        rejected={t: reason for part in parts for t, reason in part.rejected.items()},
        jumps=jumps.filter(into_new),
        events=[event for part in parts for event in part.events],
    )


def _factor_at(rebases: Sequence[Rebase], ticker: str, day: date) -> float:
    factor = 1.0
    for r in rebases:
        if r.ticker == ticker and (r.start is None or r.start <= day) and (r.end is None or day < r.end):
            factor *= r.factor
    return factor


def _confirm_jumps(
    source: PriceSource,
    checked: Checked,
    plan: _Plan,
    start: date,
    end: date,
    events: list[PriceEvent],
) -> tuple[pl.DataFrame, list[Rebase]]:
    """A second look at every ticker with a jump: the rows to store and the rebases of unit
    changes and unadjusted splits; a jump the second look does not repeat rejects its ticker
    (into checked.rejected). Confirmed jumps are added to `events`."""
    rows = checked.rows
    jumpers = sorted(set(checked.jumps["ticker"]) - set(checked.rejected))
    if not jumpers:
        return rows, []
    try:
        second = _fetch(source, jumpers, start, end).prices.select("ticker", "session_date", "close")
    except _SourceFailed as failed:  # no second look: no jump is repeated, so each rejects its ticker this time
        log.warning(
            "price source %s failed on the second look at %d ticker(s) with a jump: %s",
            source.name,
            len(jumpers),
            failed.reason,
        )
        second = FetchResult().prices.select("ticker", "session_date", "close")
    looks = checked.jumps.join(second.rename({"close": "again"}), on=["ticker", "session_date"], how="left")
    rebases: list[Rebase] = []
    splits = rows.filter(pl.col("stock_splits") > 0).select("ticker", "session_date", "stock_splits")
    for jump in looks.join(splits, on=["ticker", "session_date"], how="left").iter_rows(named=True):
        ticker, day, close, before = jump["ticker"], jump["session_date"], jump["close"], jump["before_close"]
        if ticker in checked.rejected:
            continue
        again = jump["again"]
        if again is None or abs(again / close - 1) > SAME_CLOSE:
            checked.rejected[ticker] = (
                f"the close of {day} moved {close / before - 1:+.0%} from {before:.6g} to {close:.6g} and a second "
                f"look gave {again if again is None else f'{again:.6g}'}: not stored, asked again next cycle"
            )
            continue
        ratio = close / before
        rebase = _rebase_for(ticker, day, ratio, jump["stock_splits"])
        if rebase is None:
            detail = (
                f"moved {ratio - 1:+.1%} from {before:.6g} on {jump['before_date']} to {close:.6g}, seen twice: kept"
            )
            events.append(PriceEvent(ticker, day, "jump", detail, ratio))
            continue
        kind, why = ("unit_change", "a change of unit") if jump["stock_splits"] is None else ("restatement", "a split")
        detail = f"the closes before moved by {ratio:.6g} ({why}, seen twice): the earlier prices rebased"
        events.append(PriceEvent(ticker, day, kind, detail, ratio))
        rebases.append(rebase)
        earlier = (pl.col("ticker") == ticker) & (pl.col("session_date") < day)
        rows = rows.with_columns(
            pl.when(earlier).then(pl.col(name) * ratio).otherwise(pl.col(name)).alias(name)
            for name in ("open", "high", "low", "close", "adj_close")
        )
    return rows, rebases


def _rebase_for(ticker: str, day: date, ratio: float, split: float | None) -> Rebase | None:
    """The rebase a confirmed move of `ratio` on `day` calls for, or None when it is a real move."""
    if split and abs(ratio * split - 1) <= _UNIT_TOLERANCE:  # the price fell by the split the source reports
        return Rebase(ticker, None, day, ratio, volume_factor=split)
    if any(abs(ratio * unit - 1) <= _UNIT_TOLERANCE for unit in (_UNIT_RATIO, 1 / _UNIT_RATIO)):
        return Rebase(ticker, None, day, ratio)
    return None


def _log_events(events: Sequence[PriceEvent]) -> None:
    for event in events:
        if event.kind in ("restatement", "correction", "jump", "unit_change"):
            log.warning(
                "%s: %s on %s: %s",
                event.ticker,
                event.kind,
                event.session_date,
                event.detail,
                extra={"event": f"price_{event.kind}", "ticker": event.ticker},
            )
