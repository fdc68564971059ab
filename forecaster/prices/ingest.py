"""Storing what a cycle needs from the price source: one fetch for every ticker, checked, then upserted.

A ticker gets the closes after its last stored one through the session forecast from and,
when a cycle must forecast it from an earlier session than its stored history supports (a new
ticker, or a backfill of an older period), the history before its first stored close back to
`history_sessions` sessions before that session. Stored closes are never overwritten by a
routine fetch; only a split repair (below) replaces them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import cast

import polars as pl
import sqlalchemy as sa

from forecaster import calendar
from forecaster.errors import TickerFailure
from forecaster.prices.checks import check_fetched_prices
from forecaster.prices.sources.base import PriceSource
from forecaster.store import prices as price_store

log = logging.getLogger(__name__)

#: A ticker's latest close is looked for among this many sessions first (see latest_closes).
_RECENT_SESSIONS = 30
#: Tickers whose fetched rows are checked together.
_CHECK_BATCH_TICKERS = 500


def ensure_prices(
    engine: sa.Engine,
    source: PriceSource,
    first_sessions: Mapping[str, date],
    through: date,
    *,
    history_sessions: int,
    clock: Callable[[], datetime],
) -> dict[str, TickerFailure]:
    """Fetches and stores, in one source call, what each ticker of `first_sessions` lacks to be
    forecast from its session there through `through`. Returns the tickers the source failed
    on or whose prices were rejected."""
    tickers = list(first_sessions)
    needed = {t: calendar.sessions_back(d, history_sessions) for t, d in first_sessions.items()}
    with engine.connect() as connection:
        asked = price_store.requested_from(tickers, connection=connection)
        earlier = {t: start for t, start in needed.items() if t not in asked or start < asked[t]}
        recently = calendar.sessions_back(through, _RECENT_SESSIONS)
        last = price_store.latest_closes(tickers, connection=connection, probably_since=recently)
        first = price_store.earliest_closes(list(earlier), connection=connection)
    later = [t for t in tickers if t in last and last[t][0] < through]
    wanted = sorted(set(earlier) | set(later))
    if not wanted:
        return {}
    start = min(earlier[t] if t in earlier else last[t][0] + timedelta(days=1) for t in wanted)
    end = max([through, *(first[t][0] for t in earlier if t in first)])
    result = source.fetch(wanted, start, end)
    failures = {t: TickerFailure("fetch", reason) for t, reason in result.failures.items()}
    fetched = result.prices.filter(pl.col("ticker").is_in(wanted))
    # Checked a batch of tickers at a time: polars' sorts and groupings of a whole first fetch
    # (5,000 tickers x 300 sessions) would otherwise double the cycle's peak memory.
    checked = [
        _checked(
            fetched.filter(pl.col("ticker").is_in(batch)), through=through, earlier=earlier, last=last, first=first
        )
        for batch in (wanted[k : k + _CHECK_BATCH_TICKERS] for k in range(0, len(wanted), _CHECK_BATCH_TICKERS))
    ]
    clean = pl.concat([part for part, _ in checked], how="vertical_relaxed")
    rejected = {ticker: reason for _, part_rejected in checked for ticker, reason in part_rejected.items()}

    for ticker, history in _revised_histories(engine, source, fetched, rejected, last, through).items():
        del rejected[ticker]
        clean = pl.concat([clean.filter(pl.col("ticker") != ticker), history], how="vertical_relaxed")
    failures |= {t: TickerFailure("validate", reason) for t, reason in rejected.items() if t not in failures}
    with engine.begin() as connection:
        if clean.height:
            price_store.upsert_prices(
                clean,
                connection=connection,
                source=source.name,
                fetched_at=clock(),
                new_tickers=[t for t in wanted if t not in last and t not in rejected],
            )
        price_store.record_requested({t: d for t, d in earlier.items() if t not in failures}, connection=connection)
    return failures


def _checked(
    fetched: pl.DataFrame,
    *,
    through: date,
    earlier: Mapping[str, date],
    last: Mapping[str, tuple[date, float]],
    first: Mapping[str, tuple[date, float]],
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The fetched rows worth storing and {ticker: reason} for tickers rejected. Three kinds of
    rows, each checked against its stored neighbour: after the stored closes, before them, and
    every row of a ticker with nothing stored."""
    tickers = set(fetched["ticker"].unique())
    later = [t for t in sorted(tickers) if t in last and last[t][0] < through]
    before_first = {t: first[t] for t in earlier if t in first and t in tickers}
    date_of = pl.col("ticker").replace_strict
    after = fetched.filter(
        pl.col("ticker").is_in(later)
        & (pl.col("session_date") > date_of({t: last[t][0] for t in later}, default=None, return_dtype=pl.Date))
        & (pl.col("session_date") <= through)
    )
    before = fetched.filter(
        pl.col("ticker").is_in(list(before_first))
        & (
            pl.col("session_date")
            < date_of({t: d for t, (d, _) in before_first.items()}, default=None, return_dtype=pl.Date)
        )
    )
    new = fetched.filter(~pl.col("ticker").is_in(list(last)) & (pl.col("session_date") <= through))
    clean_after, rejected = check_fetched_prices(after, last_stored={t: last[t] for t in later})
    clean_before, rejected_before = check_fetched_prices(before, next_stored=before_first)
    clean_new, rejected_new = check_fetched_prices(new)
    rejected |= rejected_before | rejected_new
    clean = pl.concat([clean_after, clean_before, clean_new], how="vertical_relaxed")
    return clean.filter(~pl.col("ticker").is_in(list(rejected))), rejected


def _revised_histories(
    engine: sa.Engine,
    source: PriceSource,
    fetched: pl.DataFrame,
    rejected: dict[str, str],
    last: Mapping[str, tuple[date, float]],
    through: date,
) -> dict[str, pl.DataFrame]:
    """Fresh histories of the tickers whose fetched closes jump only against the stored ones.

    That is how a split shows once the source adjusts its history (yfinance does): the
    stored closes are the stale ones. Such a ticker's whole stored span is fetched again
    and, if it holds no jump itself, replaces the stored rows.
    """
    candidates = [t for t in rejected if t in last]
    if not candidates:
        return {}
    _, jumps_within_fetch = check_fetched_prices(fetched.filter(pl.col("ticker").is_in(candidates)))
    boundary = [t for t in candidates if t not in jumps_within_fetch]
    if not boundary:
        return {}
    with engine.connect() as connection:
        first = price_store.earliest_closes(boundary, connection=connection)
    end = max([through, *(last[t][0] for t in boundary)])
    result = source.fetch(boundary, min(first[t][0] for t in boundary), end)
    histories, still_bad = check_fetched_prices(result.prices.filter(pl.col("ticker").is_in(boundary)))
    revised = {}
    for (ticker,), history in histories.partition_by("ticker", as_dict=True).items():
        if ticker not in still_bad and cast(date, history["session_date"].max()) >= max(through, last[ticker][0]):
            log.warning(
                "%s: its closes jump against the stored ones (a split?); refetched and replaced its %d stored sessions",
                ticker,
                history.height,
            )
            revised[ticker] = history
    return revised
