"""The two walks over daily cycles: the daemon's catch-up and the backfill, market by market.

Each ticker follows its own exchange's calendar (forecaster.markets); a walk groups the watch list
by calendar and walks each calendar's sessions in date order, so a ticker's state through one of
its sessions exists before its next.

    catch_up_now  the daemon's job (and `run --once`): for each market, every (ticker, session)
                  owed and not yet forecast through that market's latest closed session.
    backfill      the backtest: every session from START to END of each market, for its tickers.

A session is owed only once it has closed (its close, plus the market's settling delay). A
session that has closed but whose close is not stored after the fetch is waited for: the ticker
stops there ("not yet", never a failure) until the close arrives, or, once
`gap_wait_sessions` more sessions of its calendar have closed, the session is accepted as a gap
(a price event), and the ticker is forecast from its next session on; its windows skip the gap.
So nothing is given up before it could exist, and no ticker stalls for more than the wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from forecaster import stages
from forecaster.calendar import TradingCalendar, trading_calendar
from forecaster.context import CycleContext
from forecaster.cycle import CycleOutcome, close_abandoned_runs, run_cycle
from forecaster.errors import CycleInterrupted, TickerFailure, UserError
from forecaster.prices.ingest import ensure_prices
from forecaster.store import predictions as prediction_store
from forecaster.store import prices as price_store
from forecaster.store import series as series_store
from forecaster.store.price_events import PriceEvent, gap_sessions, record_events
from forecaster.store.runs import RunKind

log = logging.getLogger(__name__)

#: A (ticker, session) whose cycle failed this many times at validate, train or write is given up.
GIVE_UP_AFTER_FAILURES = 3


def latest_closed(context: CycleContext, calendar: str, now: datetime) -> date | None:
    """The latest session of `calendar` whose close, plus its settling delay, is at or before `now`."""
    return trading_calendar(calendar).latest_closed_session(now, context.settle(calendar))


def refuse_the_future(
    day: date, flag: str, *, calendars: Iterable[str], settle: Callable[[str], timedelta], now: datetime
) -> None:
    """A UserError when, on any of `calendars`, the latest session on or before `day` has not
    closed by `now`, with its settling delay (naming that market's latest closed session): its
    bars are not final. Needs no database, so a refused command leaves it untouched."""
    for calendar in dict.fromkeys(calendars):
        market = trading_calendar(calendar)
        session, closed = market.session_on_or_before(day), market.latest_closed_session(now, settle(calendar))
        if session is not None and (closed is None or session > closed):
            raise UserError(
                f"{flag} {day}: the {market.label} session of {session} has not closed yet "
                f"(with {settle(calendar)} for its prices to settle); its latest closed session is {closed}"
            )


def catch_up_now(
    context: CycleContext,
    *,
    through: date | None = None,
    calendars: Sequence[str] | None = None,
    on_cycle: Callable[[CycleOutcome], None] | None = None,
) -> list[CycleOutcome]:
    """The forecast job of the daemon and of `run --once`: closes the runs a stopped process left
    behind, then, market by market (or those of `calendars`), catches up every session owed
    through the market's latest closed session, or its latest session on or before `through`;
    `on_cycle` is told each cycle as it ends. The caller holds the scheduler lock."""
    close_abandoned_runs(context)
    now = context.clock()
    outcomes = []
    for calendar, tickers in context.markets().items():
        if calendars is not None and calendar not in calendars:
            continue
        latest = latest_closed(context, calendar, now)
        if through is not None and latest is not None:
            latest = min(latest, trading_calendar(calendar).session_on_or_before(through) or latest)
        if latest is not None:
            outcomes += catch_up(context, latest, tickers=tickers, on_cycle=on_cycle)
    return outcomes


def catch_up(
    context: CycleContext,
    latest: date,
    *,
    tickers: Sequence[str] | None = None,
    on_cycle: Callable[[CycleOutcome], None] | None = None,
) -> list[CycleOutcome]:
    """Every session owed by `tickers` (default: the watch list; one calendar's) through `latest`
    (see `owed_sessions`), in date order, then `latest` itself even when nothing is owed there
    (so that the run `status` reads exists)."""
    tickers = list(context.tickers if tickers is None else tickers)
    (calendar,) = context.markets(tickers) or {context.calendar_of(tickers[0]): tickers}
    market = trading_calendar(calendar)
    _start_newcomers(context, tickers, calendar, latest)
    owed = owed_sessions(context, latest, tickers=tickers)
    failures = _fetch(context, market, {t: sessions[0] for t, sessions in owed.items()}, latest)
    ready = _with_closes(context, market, owed, latest, failures)
    walk = sorted({d for t, sessions in ready.due.items() if t not in failures for d in sessions} | {latest})
    return _cycles(context, calendar, tickers, walk, ready, failures, kind="daily", on_cycle=on_cycle)


def backfill(
    context: CycleContext, start: date, end: date, on_cycle: Callable[[CycleOutcome], None] | None = None
) -> list[CycleOutcome]:
    """The backtest: for each market of the watch list, one cycle for every one of its sessions
    from `start` to `end` inclusive, for its tickers, after one fetch of everything the walk
    needs. A ticker the fetch failed on is recorded as failed in each cycle, not fetched again;
    a session without its close is a gap or, when recent, waited for (the module docstring)."""
    outcomes = []
    now = context.clock()
    for calendar, tickers in context.markets().items():
        market = trading_calendar(calendar)
        sessions = market.sessions_between(start, end)
        if not sessions:
            continue
        failures = _fetch(context, market, dict.fromkeys(tickers, sessions[0]), sessions[-1])
        closed = latest_closed(context, calendar, now) or sessions[-1]
        ready = _with_closes(context, market, dict.fromkeys(tickers, sessions), closed, failures)
        outcomes += _cycles(context, calendar, tickers, sessions, ready, failures, kind="backfill", on_cycle=on_cycle)
    return outcomes


@dataclass(frozen=True)
class _Ready:
    """What a walk can forecast now, after its fetch (see _with_closes)."""

    due: dict[str, set[date]]  # ticker -> the sessions it is forecast from in this walk
    waits_from: dict[str, date]  # ticker -> the session whose close it waits for

    def waiting_at(self, session: date) -> int:
        """How many tickers wait, at `session`, for a close of it or of an earlier session."""
        return sum(1 for first in self.waits_from.values() if first <= session)


def _cycles(
    context: CycleContext,
    calendar: str,
    tickers: Sequence[str],
    sessions: Sequence[date],
    ready: _Ready,
    failures: Mapping[str, TickerFailure],
    *,
    kind: RunKind,
    on_cycle: Callable[[CycleOutcome], None] | None = None,
) -> list[CycleOutcome]:
    """One cycle for each of `sessions` in order, for the tickers due there; a stop request ends the walk."""
    outcomes = []
    for session in sessions:
        if context.should_stop():
            raise CycleInterrupted
        outcome = run_cycle(
            context,
            session,
            tickers=[t for t in tickers if session in ready.due.get(t, ())],
            calendar=calendar,
            kind=kind,
            prefetch_failures=failures,
            waiting=ready.waiting_at(session),
        )
        outcomes.append(outcome)
        if on_cycle:
            on_cycle(outcome)
    return outcomes


def _fetch(
    context: CycleContext, market: TradingCalendar, first_sessions: Mapping[str, date], through: date
) -> dict[str, TickerFailure]:
    if not first_sessions:
        return {}
    # The walk's first cycle is the one this fetch is for; the later ones fetch nothing.
    with stages.timed("fetch", market.name, min(first_sessions.values())):
        return ensure_prices(
            context.engine,
            context.source,
            first_sessions,
            through,
            calendar=market,
            rules=context.price_rules,
            clock=context.clock,
        )


def _with_closes(
    context: CycleContext,
    market: TradingCalendar,
    wanted: Mapping[str, Sequence[date]],
    closed: date,
    failures: Mapping[str, TickerFailure],
) -> _Ready:
    """For each ticker, the sessions of `wanted` it can be forecast from now: each up to its first
    session whose close is not stored and that closed less than gap_wait_sessions sessions before
    `closed` (where it waits); older sessions without a close become gaps. A ticker the fetch
    failed on keeps all (its failure is recorded in each of their cycles)."""
    fetched = [t for t in wanted if t not in failures and wanted[t]]
    waits_from: dict[str, date] = {}
    if not fetched:
        return _Ready({t: set(sessions) for t, sessions in wanted.items()}, waits_from)
    first, last = min(wanted[t][0] for t in fetched), max(wanted[t][-1] for t in fetched)
    with context.engine.connect() as connection:
        closes = price_store.load_closes(fetched, connection=connection, start=first, end=last)
    stored = set(closes.select("ticker", "session_date").iter_rows())
    due: dict[str, set[date]] = {t: set(sessions) for t, sessions in wanted.items() if t in failures}
    gaps: list[PriceEvent] = []
    for ticker in fetched:
        due[ticker] = set()
        for session in wanted[ticker]:
            if (ticker, session) in stored:
                due[ticker].add(session)
                continue
            waited = market.count_sessions(session, closed) - 1  # sessions closed since
            if waited < context.gap_wait_sessions:
                log.info(
                    "%s: waiting for its %s close of %s (%d of %d sessions waited); later sessions wait too",
                    ticker,
                    market.label,
                    session,
                    waited,
                    context.gap_wait_sessions,
                    extra={"event": "waiting_for_close", "ticker": ticker},
                )
                waits_from[ticker] = session
                break
            detail = f"no close from the source {waited} sessions after it: accepted as a gap, forecast around"
            gaps.append(PriceEvent(ticker, session, "gap", detail))
    if gaps:
        with context.engine.begin() as connection:
            record_events(gaps, connection=connection, seen_at=context.clock())
        log.warning(
            "%d session(s) accepted as gaps: %s",
            len(gaps),
            ", ".join(f"{g.ticker} {g.session_date}" for g in gaps[:10]),
        )
    return _Ready(due, waits_from)


def _start_newcomers(context: CycleContext, tickers: Sequence[str], calendar: str, latest: date) -> None:
    """Starts the series of tickers new to the watch list, durably and before any work on them:
    from the first session the catch-up walks (the one after the latest forecast of any ticker
    of the same calendar), or from `latest` when that calendar has no forecast yet. Records the
    calendar of series whose calendar moved (an override changed)."""
    preset = context.preset.name
    market = trading_calendar(calendar)
    with context.scheduler_transaction() as connection:
        moved = series_store.moved_calendars(preset, dict.fromkeys(tickers, calendar), connection=connection)
        newcomers = series_store.unenrolled(preset, tickers, connection=connection)
        if newcomers:
            last = prediction_store.latest_as_of(preset, connection=connection, calendar=calendar)
            start = latest if last is None or last >= latest else market.next_session(last)
            series_store.enroll(preset, newcomers, start, connection=connection, now=context.clock(), calendar=calendar)
    for ticker, old in moved.items():
        log.info("%s: now forecast on the %s calendar (was %s)", ticker, calendar, old)
    if newcomers:
        log.info(
            "%d ticker(s) new to the watch list, forecast on %s from %s on: %s",
            len(newcomers),
            market.label,
            start,
            ", ".join(newcomers[:10]),
        )


def owed_sessions(
    context: CycleContext, latest: date, *, tickers: Sequence[str] | None = None
) -> dict[str, list[date]]:
    """{ticker: the sessions, in order, it owes a forecast from}: every session of its calendar
    from its series' first one through `latest` that has no forecast, except gaps and the sessions
    given up after GIVE_UP_AFTER_FAILURES failures (its history or model at fault there).
    `tickers` (default: the watch list) share one calendar."""
    tickers = list(context.tickers if tickers is None else tickers)
    market = trading_calendar(context.calendar_of(tickers[0])) if tickers else None
    preset = context.preset.name
    owed: dict[str, list[date]] = {}
    if market is None:
        return owed
    with context.engine.connect() as connection:
        progress = series_store.progress(preset, tickers, latest, connection=connection)
        partial = []
        for series in progress:
            if series.first_as_of > latest or series.forecasts == market.count_sessions(series.first_as_of, latest):
                continue
            if series.last_as_of is None:
                owed[series.ticker] = market.sessions_between(series.first_as_of, latest)
            elif series.forecasts == market.count_sessions(series.first_as_of, series.last_as_of):
                owed[series.ticker] = market.sessions_between(market.next_session(series.last_as_of), latest)
            else:
                partial.append(series)
        if partial:
            made = series_store.forecast_sessions(
                preset, [s.ticker for s in partial], min(s.first_as_of for s in partial), latest, connection=connection
            )
            for series in partial:
                sessions = market.sessions_between(series.first_as_of, latest)
                owed[series.ticker] = [d for d in sessions if d not in made[series.ticker]]
        skip = series_store.given_up(preset, list(owed), connection=connection, attempts=GIVE_UP_AFTER_FAILURES)
        skip |= gap_sessions(list(owed), connection=connection)
    owed = {t: [d for d in sessions if (t, d) not in skip] for t, sessions in owed.items()}
    return {t: sessions for t, sessions in owed.items() if sessions}


def sessions_to_walk(calendars: Sequence[str], start: date, end: date) -> int:
    """How many cycles a backfill from `start` to `end` runs over markets of `calendars`."""
    return sum(trading_calendar(c).count_sessions(start, end) for c in dict.fromkeys(calendars))
