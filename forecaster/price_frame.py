"""The price contract: the long frame of daily bars that every source returns and the prices table stores.

One row per (ticker, session_date): a source returns SOURCE_SCHEMA's columns (the bar and the
corporate actions of its date), the prices table stores PRICE_SCHEMA's (the bar). A frame from a source
may break every rule of a stored one (NaN or missing closes, repeated dates, jumps); the ingest
(forecaster.prices.ingest, with the rules of forecaster.prices.checks) is the one place that
checks it. What it stores holds, for every row: a positive, finite close, and at most one row
per (ticker, session_date). Everything above the ingest (the store, the model) relies on that.

This module sits at the bottom of the package: sources, the store and the model all import it,
and it imports nothing of theirs.
"""

from __future__ import annotations

import polars as pl

#: The long price frame, in this column order.
PRICE_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),
    "volume": pl.Float64(),
}

#: The corporate actions a source may report on a bar's date (yfinance's actions=True): the cash
#: dividend per share going ex on that date, and the split ratio (2.0 for 2-for-1, 0.1 for 1-for-10);
#: 0 or null on other days. The ingest records them as price events; the prices table keeps bars only.
ACTION_SCHEMA: dict[str, pl.DataType] = {"dividends": pl.Float64(), "stock_splits": pl.Float64()}

#: What a source returns: the bar and its actions.
SOURCE_SCHEMA: dict[str, pl.DataType] = {**PRICE_SCHEMA, **ACTION_SCHEMA}

#: The columns a source may leave out: filled with nulls by `conform`.
OPTIONAL_COLUMNS: tuple[str, ...] = ("open", "high", "low", "adj_close", "volume", *ACTION_SCHEMA)

#: The (ticker, session_date, close) frame the model reads back from the store.
CLOSES_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "close": pl.Float64(),
}


def empty_prices() -> pl.DataFrame:
    return pl.DataFrame(schema=SOURCE_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in SOURCE_SCHEMA: its columns in order and type, optional ones it lacks as nulls.

    A frame without ticker, session_date or close is a programming error (ValueError).
    """
    required = [name for name in SOURCE_SCHEMA if name not in OPTIONAL_COLUMNS and name not in frame.columns]
    if required:
        raise ValueError(f"price frame lacks columns {required}; has {frame.columns}")
    return frame.with_columns(
        pl.lit(None, SOURCE_SCHEMA[name]).alias(name) for name in OPTIONAL_COLUMNS if name not in frame.columns
    ).select(pl.col(name).cast(dtype) for name, dtype in SOURCE_SCHEMA.items())
