"""Rules applied to fetched prices, row by row, before they are stored: repair what is safe, reject
what cannot be a price, and flag what needs a second look or a note.

A rejected ticker stores nothing from that fetch; the cycle records it in `run_failures` (stage
"prices", never counted toward giving a session up) with the reason, and the next cycle fetches
it again. Each rule is also listed in the README's "Failure behaviour" section.

Repaired (the rest of the ticker's rows are stored):

- a row without a close (NaN or missing; yfinance pads a ticker's failed days with NaN) is dropped;
- rows out of date order are sorted;
- a date fetched twice with the same close keeps the row fetched last
  (the yahoo source itself keeps the later of two rows for a day: a live row beside the final one);
- a session missing inside the fetched range is not invented: the catch-up waits for it, then
  accepts it as a gap (forecaster.walks).

Rejected (the whole fetch of that ticker): a close that is zero, negative or not finite; one date
with two different closes.

Flagged, and stored (price events, forecaster.store.price_events):

- a close that moves beyond the jump threshold from the close before it: returned as a jump to
  confirm; the ingest looks again at the source, and stores it (event "jump") only if the second
  look shows the same close (forecaster.prices.ingest);
- a close on a day the ticker's calendar has no session: kept (the data is the truth, the
  calendar a schedule), event "off_calendar"; unless it is a stale carry (volume 0, the previous
  close repeated: Yahoo's filler on a holiday), which is not a session at all and is dropped;
- a stale carry on a session: kept, event "stale";
- a dividend or a split the source reports on a row's date: event "dividend" or "split".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from forecaster.calendar import TradingCalendar
from forecaster.price_frame import empty_prices
from forecaster.store.price_events import PriceEvent

#: Relative difference under which two closes of the same session are the same close.
SAME_CLOSE = 1e-7


_JUMP_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "close": pl.Float64(),
    "before_date": pl.Date(),
    "before_close": pl.Float64(),
}


@dataclass
class Checked:
    rows: pl.DataFrame  # the rows to store (SOURCE_SCHEMA)
    rejected: dict[str, str] = field(default_factory=dict)  # ticker -> one-line reason
    #: (ticker, session_date, close, before_date, before_close): moves beyond the threshold, to confirm
    jumps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_JUMP_SCHEMA))
    events: list[PriceEvent] = field(default_factory=list)


def check_fetched_prices(
    prices: pl.DataFrame,
    *,
    calendar: TradingCalendar,
    jump_threshold: float,
    last_stored: Mapping[str, tuple[date, float]] | None = None,
    next_stored: Mapping[str, tuple[date, float]] | None = None,
) -> Checked:
    """The rows to store, the tickers rejected whole, the jumps to confirm and the events seen.

    `last_stored` is, per ticker, the stored (session_date, close) just before the fetched rows,
    `next_stored` the one just after them (when earlier history is fetched), in the fetched
    rows' price basis: moves from and to those neighbours are checked too.
    """
    rows = (
        prices.filter(pl.col("close").is_not_null() & ~pl.col("close").is_nan())
        .with_row_index("_order")
        .sort("ticker", "session_date", "_order")
    )
    rejected = _conflicting_closes(rows) | _bad_closes(rows)
    clean = (
        rows.filter(~pl.col("ticker").is_in(list(rejected)))
        .unique(["ticker", "session_date"], keep="last", maintain_order=True)
        .drop("_order")
    )
    clean, events = _calendar_rules(clean, calendar, last_stored or {})
    events += _actions(clean)
    jumps = _jumps(clean, last_stored or {}, next_stored or {}, jump_threshold)
    return Checked(clean if clean.height else empty_prices(), rejected, jumps, events)


def _bad_closes(rows: pl.DataFrame) -> dict[str, str]:
    bad = rows.filter(~pl.col("close").is_finite() | (pl.col("close") <= 0))
    return {
        ticker: f"close {group['close'][0]} on {group['session_date'][0]} is not a positive price"
        for (ticker,), group in bad.group_by("ticker", maintain_order=True)
    }


def _conflicting_closes(rows: pl.DataFrame) -> dict[str, str]:
    conflicting = (
        rows.filter(pl.col("close").is_finite() & (pl.col("close") > 0))
        .group_by("ticker", "session_date")
        .agg((pl.col("close").max() - pl.col("close").min() > SAME_CLOSE * pl.col("close").min()).alias("differ"))
        .filter(pl.col("differ"))
        .sort("ticker", "session_date")
    )
    failures: dict[str, str] = {}
    for ticker, session_date, _ in conflicting.iter_rows():
        failures.setdefault(ticker, f"two different closes for {session_date}")
    return failures


def _stale(rows: pl.DataFrame, last_stored: Mapping[str, tuple[date, float]]) -> pl.Expr:
    """Rows that repeat the close before them with volume 0: a carried-over filler, not a trade."""
    stored = pl.col("ticker").replace_strict(
        {t: c for t, (_, c) in last_stored.items()}, default=None, return_dtype=pl.Float64
    )
    previous = pl.col("close").shift(1).over("ticker").fill_null(stored)
    return (pl.col("volume") == 0) & (pl.col("close") == previous)


def _calendar_rules(
    rows: pl.DataFrame, calendar: TradingCalendar, last_stored: Mapping[str, tuple[date, float]]
) -> tuple[pl.DataFrame, list[PriceEvent]]:
    if rows.is_empty():
        return rows, []
    days = rows["session_date"].unique().to_list()
    sessions = {d for d in days if calendar.start <= d <= calendar.end and calendar.is_session(d)}
    marked = rows.with_columns(
        pl.col("session_date").is_in(list(sessions)).alias("_session"),
        _stale(rows, last_stored).fill_null(False).alias("_stale"),
    )
    events = []
    for row in marked.filter(~pl.col("_session") | pl.col("_stale")).iter_rows(named=True):
        ticker, day, close = row["ticker"], row["session_date"], row["close"]
        if not row["_session"] and row["_stale"]:
            detail = f"a zero-volume carry of {close:.6g} on a day {calendar.label} has no session: not stored"
            events.append(PriceEvent(ticker, day, "stale", detail))
        elif not row["_session"]:
            detail = f"a close of {close:.6g} on a day {calendar.label} has no session: kept"
            events.append(PriceEvent(ticker, day, "off_calendar", detail))
        else:
            events.append(PriceEvent(ticker, day, "stale", f"volume 0 and the previous close {close:.6g} repeated"))
    kept = marked.filter(pl.col("_session") | ~pl.col("_stale")).drop("_session", "_stale")
    return kept, events


def _actions(rows: pl.DataFrame) -> list[PriceEvent]:
    events = []
    for row in rows.filter((pl.col("dividends") > 0) | (pl.col("stock_splits") > 0)).iter_rows(named=True):
        if row["dividends"]:
            detail = f"a dividend of {row['dividends']:.6g} per share goes ex"
            events.append(PriceEvent(row["ticker"], row["session_date"], "dividend", detail, row["dividends"]))
        if row["stock_splits"]:
            detail = f"a split of {row['stock_splits']:.6g} for 1"
            events.append(PriceEvent(row["ticker"], row["session_date"], "split", detail, row["stock_splits"]))
    return events


def _jumps(
    clean: pl.DataFrame,
    last_stored: Mapping[str, tuple[date, float]],
    next_stored: Mapping[str, tuple[date, float]],
    threshold: float,
) -> pl.DataFrame:
    """Every close that moves beyond ±threshold from the close before it (stored neighbours included)."""
    neighbours = [(t, d, float(c)) for stored in (last_stored, next_stored) for t, (d, c) in stored.items()]
    stored = pl.DataFrame(neighbours, schema=["ticker", "session_date", "close"], orient="row").cast(
        {"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64}
    )
    fetched = clean.select("ticker", "session_date", "close")
    stored = stored.filter(pl.col("ticker").is_in(fetched["ticker"].unique().implode()))
    series = (
        pl.concat([stored, fetched])
        .sort("ticker", "session_date", maintain_order=True)
        .unique(["ticker", "session_date"], keep="last", maintain_order=True)
    )
    return (
        series.with_columns(
            pl.col("session_date").shift(1).over("ticker").alias("before_date"),
            pl.col("close").shift(1).over("ticker").alias("before_close"),
        )
        .filter(pl.col("before_close").is_not_null())
        .filter((pl.col("close") / pl.col("before_close") - 1).abs() > threshold)
        .select(list(_JUMP_SCHEMA))
    )
