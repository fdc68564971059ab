"""Rules applied to fetched prices before they are stored: repair what is safe, reject the rest.

Each rule is listed in the README's "Failure behaviour" section. A rejected ticker
stores nothing from that fetch and is recorded with the reason.
"""

from __future__ import annotations

import polars as pl


def check_fetched_prices(prices: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, str]]:
    """(the rows to store, {ticker: reason} for tickers rejected whole).

    Repairs: rows without a close are dropped (yfinance pads failed days with NaN);
    rows are sorted by date; exact duplicate dates keep the last row fetched.
    Rejects: a ticker with a non-finite or non-positive close, or with one date
    carrying two different closes.
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
    return clean, failures
