"""Rules applied to fetched prices before they are stored: repair what is safe, reject the rest.

A rejected ticker stores nothing from that fetch; the cycle records it in `run_failures`
(stage "validate") with the reason, and the next cycle fetches it again. Each rule below is
also listed in the README's "Failure behaviour" section.

Repaired (the rest of the ticker's rows are stored):

- a row without a close (NaN or missing; yfinance pads a ticker's failed days with NaN) is dropped;
- rows out of date order are sorted;
- a date fetched twice with the same close keeps the row fetched last
  (the yahoo source itself keeps the later of two rows for a day: a live row beside the final one);
- a session missing inside the fetched range (no row at all) is not invented: the others are
  stored, a warning names the missing sessions, and the lag windows simply use the closes that
  exist. Rejecting would stall the ticker for good, since every later fetch would hold the gap.

Rejected (the whole fetch of that ticker):

- a close that is zero, negative or not finite;
- one date with two different closes;
- a close that moves more than ±40 % (MAX_DAILY_MOVE) from the previous close, within the fetch,
  from the last stored close before the fetched rows, or to the first stored close after them
  (when the caller passes them): with split-adjusted data
  (yfinance's default) a move that large is far more often an unadjusted split or a bad tick
  than a real move, and one such step would dominate the lag features of every window that
  holds it. A genuine move that large is rejected too; the reason names both closes so an
  operator can tell. (A split adjusts the whole history retroactively: when new closes jump
  only against the stored ones, forecaster.prices.ingest fetches the ticker's stored span again
  and, if that history is clean, replaces the stored rows with it.)

A ticker the source does not return, or returns without a single close (vanished, delisted),
is the source's failure (stage "fetch"), not this module's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

import polars as pl

from forecaster import calendar
from forecaster.errors import UserError

log = logging.getLogger(__name__)

#: Largest accepted change from one close to the next, as a fraction of the earlier close.
MAX_DAILY_MOVE = 0.40


def check_fetched_prices(
    prices: pl.DataFrame,
    *,
    last_stored: Mapping[str, tuple[date, float]] | None = None,
    next_stored: Mapping[str, tuple[date, float]] | None = None,
    max_move: float = MAX_DAILY_MOVE,
) -> tuple[pl.DataFrame, dict[str, str]]:
    """(the rows to store, {ticker: reason} for tickers rejected whole); see the module docstring.

    `last_stored` is, per ticker, the stored (session_date, close) just before the fetched rows,
    `next_stored` the one just after them (when earlier history is fetched): the fetched closes
    are checked against those neighbours too.
    """
    rows = (
        prices.filter(pl.col("close").is_not_null() & ~pl.col("close").is_nan())
        .with_row_index("_order")
        .sort("ticker", "session_date", "_order")
    )
    failures: dict[str, str] = {}
    bad_close = rows.filter(~pl.col("close").is_finite() | (pl.col("close") <= 0))
    for ticker, group in bad_close.group_by("ticker", maintain_order=True):
        first = group.row(0, named=True)
        failures[ticker[0]] = f"close {first['close']} on {first['session_date']} is not a positive price"
    conflicting = (
        rows.group_by("ticker", "session_date")
        .agg(pl.col("close").n_unique().alias("closes"))
        .filter(pl.col("closes") > 1)
        .sort("ticker", "session_date")
    )
    for ticker, session_date, _ in conflicting.iter_rows():
        failures.setdefault(ticker, f"two different closes for {session_date}")
    clean = (
        rows.filter(~pl.col("ticker").is_in(list(failures)))
        .unique(["ticker", "session_date"], keep="last", maintain_order=True)
        .drop("_order")
    )
    failures |= _jumps(clean, last_stored or {}, next_stored or {}, max_move)
    clean = clean.filter(~pl.col("ticker").is_in(list(failures)))
    _warn_missing_sessions(clean, last_stored or {})
    return clean, failures


def _jumps(
    clean: pl.DataFrame,
    last_stored: Mapping[str, tuple[date, float]],
    next_stored: Mapping[str, tuple[date, float]],
    max_move: float,
) -> dict[str, str]:
    """{ticker: reason} for the first close that moves beyond ±max_move from the close before it."""
    neighbours = [(t, d, c) for stored in (last_stored, next_stored) for t, (d, c) in stored.items()]
    stored = pl.DataFrame(
        {
            "ticker": [t for t, _, _ in neighbours],
            "session_date": [d for _, d, _ in neighbours],
            "close": [float(c) for _, _, c in neighbours],
        },
        schema={"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64},
    )
    fetched = clean.select("ticker", "session_date", "close")
    stored = stored.filter(pl.col("ticker").is_in(fetched["ticker"].unique().implode()))
    series = (
        pl.concat([stored, fetched])
        .sort("ticker", "session_date", maintain_order=True)
        .unique(["ticker", "session_date"], keep="last", maintain_order=True)
    )
    moves = (
        series.with_columns(
            pl.col("session_date").shift(1).over("ticker").alias("before_date"),
            pl.col("close").shift(1).over("ticker").alias("before_close"),
        )
        .filter(pl.col("before_close").is_not_null())
        .filter((pl.col("close") / pl.col("before_close") - 1).abs() > max_move)
    )
    failures: dict[str, str] = {}
    for row in moves.iter_rows(named=True):
        move = row["close"] / row["before_close"] - 1
        failures.setdefault(
            row["ticker"],
            f"close moved {move:+.0%} from {row['before_close']:.6g} on {row['before_date']} to "
            f"{row['close']:.6g} on {row['session_date']}, beyond ±{max_move:.0%}: an unadjusted split or a bad tick?",
        )
    return failures


def _warn_missing_sessions(clean: pl.DataFrame, last_stored: Mapping[str, tuple[date, float]]) -> None:
    """Logs the NYSE sessions with no row between a ticker's first (or last stored) and last fetched date."""
    spans = clean.group_by("ticker").agg(
        pl.col("session_date").min().alias("first"), pl.col("session_date").max().alias("last"), pl.col("session_date")
    )
    for ticker, first, last, dates in spans.sort("ticker").iter_rows():
        if ticker in last_stored:
            first = min(first, last_stored[ticker][0])
            dates = [*dates, last_stored[ticker][0]]
        try:
            expected = calendar.sessions_between(first, last)
        except UserError:  # dates outside the calendar's years: nothing to compare with
            continue
        missing = sorted(set(expected) - set(dates))
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            log.warning(
                "%s: %d session(s) missing from the fetched prices (%s); storing the others, the lag windows skip them",
                ticker,
                len(missing),
                shown,
                extra={"event": "sessions_missing", "ticker": ticker},
            )
