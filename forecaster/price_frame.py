"""The price contract: the long frame of daily bars that every source returns and the prices table stores.

One row per (ticker, session_date), in PRICE_SCHEMA's columns and order. A frame from a source
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

#: The columns a source may leave out: filled with nulls by `conform`.
OPTIONAL_COLUMNS: tuple[str, ...] = ("open", "high", "low", "adj_close", "volume")

#: The (ticker, session_date, close) frame the model reads back from the store.
CLOSES_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "close": pl.Float64(),
}


def empty_prices() -> pl.DataFrame:
    return pl.DataFrame(schema=PRICE_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in PRICE_SCHEMA: its columns in order and type, optional ones it lacks as nulls.

    A frame without ticker, session_date or close is a programming error (ValueError).
    """
    required = [name for name in PRICE_SCHEMA if name not in OPTIONAL_COLUMNS and name not in frame.columns]
    if required:
        raise ValueError(f"price frame lacks columns {required}; has {frame.columns}")
    return frame.with_columns(
        pl.lit(None, PRICE_SCHEMA[name]).alias(name) for name in OPTIONAL_COLUMNS if name not in frame.columns
    ).select(pl.col(name).cast(dtype) for name, dtype in PRICE_SCHEMA.items())
