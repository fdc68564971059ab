"""Daily prices: bulk upsert, and reads back into the long polars frame."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import polars as pl
import sqlalchemy as sa

from forecaster.prices.sources.base import PRICE_SCHEMA
from forecaster.store.bulk import upsert
from forecaster.store.schema import prices

PRICE_COLUMNS = tuple(PRICE_SCHEMA)
_VALUE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


def upsert_prices(frame: pl.DataFrame, *, connection: sa.Connection, source: str, fetched_at: datetime) -> int:
    """Stores the long price frame in one statement; returns how many rows were inserted or changed.

    A stored (ticker, session_date) is rewritten, with this `source` and `fetched_at`,
    only when one of its price values differs, so storing the same prices again changes
    nothing: `fetched_at` says when a row's values were last written. NaN is stored as
    NULL (SQLite cannot store NaN), so a NaN close is refused by the NOT NULL constraint.
    """
    missing = [column for column in PRICE_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"price frame lacks columns {missing}; has {frame.columns}")
    if frame.is_empty():
        return 0
    duplicated = frame.filter(frame.select("ticker", "session_date").is_duplicated())
    if duplicated.height:
        first = duplicated.row(0, named=True)
        raise ValueError(
            f"price frame repeats {duplicated.height} (ticker, session_date) keys, e.g. {first['ticker']} {first['session_date']}"
        )
    values = frame.select(PRICE_COLUMNS).with_columns(pl.col(_VALUE_COLUMNS).cast(pl.Float64).fill_nan(None))
    rows = [{**row, "source": source, "fetched_at": fetched_at} for row in values.to_dicts()]
    statement = upsert(
        connection, prices, update=[*_VALUE_COLUMNS, "source", "fetched_at"], when_changed=_VALUE_COLUMNS
    ).returning(prices.c.ticker)
    return len(connection.execute(statement, rows).all())


def load_prices(
    tickers: Sequence[str] | None,
    *,
    connection: sa.Connection,
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """Stored prices of `tickers` (all when None) from `start` to `end` inclusive, sorted by ticker and date."""
    statement = sa.select(*(prices.c[column] for column in PRICE_COLUMNS)).order_by(prices.c.ticker, prices.c.session_date)
    if tickers is not None:
        if not tickers:
            return pl.DataFrame(schema=PRICE_SCHEMA)
        statement = statement.where(prices.c.ticker.in_(list(tickers)))
    if start is not None:
        statement = statement.where(prices.c.session_date >= start)
    if end is not None:
        statement = statement.where(prices.c.session_date <= end)
    return pl.DataFrame(connection.execute(statement).all(), schema=PRICE_SCHEMA, orient="row")


def load_closes(tickers: Sequence[str], *, connection: sa.Connection, start: date, end: date) -> pl.DataFrame:
    """(ticker, session_date, close) of `tickers` from `start` to `end` inclusive, sorted by ticker
    and date: the daily cycle's training input, about 250 rows a ticker. Dates travel as ISO
    text and are parsed by polars at once, and rows skip SQLAlchemy's per-row processing:
    several times faster than load_prices for a million rows."""
    if not tickers:
        return pl.DataFrame(schema={"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64})
    statement = (
        sa.select(prices.c.ticker, sa.cast(prices.c.session_date, sa.String), prices.c.close)
        .where(prices.c.ticker.in_(list(tickers)), prices.c.session_date.between(start, end))
        .order_by(prices.c.ticker, prices.c.session_date)
    )
    result = connection.execute(statement)
    rows = result.cursor.fetchall()  # plain tuples: every column is already a plain Python value
    result.close()
    frame = pl.DataFrame(rows, schema={"ticker": pl.String, "session_date": pl.String, "close": pl.Float64}, orient="row")
    return frame.with_columns(pl.col("session_date").str.to_date("%Y-%m-%d"))


def earliest_date(tickers: Sequence[str], *, connection: sa.Connection) -> date | None:
    """The first stored session of any of `tickers`, or None when none has prices."""
    if not tickers:
        return None
    statement = sa.select(sa.func.min(prices.c.session_date)).where(prices.c.ticker.in_(list(tickers)))
    return connection.execute(statement).scalar_one()


def latest_closes(tickers: Sequence[str], *, connection: sa.Connection) -> dict[str, tuple[date, float]]:
    """Each ticker's last stored (session_date, close); tickers with no prices are absent."""
    if not tickers:
        return {}
    latest = (
        sa.select(prices.c.ticker, sa.func.max(prices.c.session_date).label("session_date"))
        .where(prices.c.ticker.in_(list(tickers)))
        .group_by(prices.c.ticker)
        .subquery()
    )
    statement = sa.select(prices.c.ticker, prices.c.session_date, prices.c.close).join(
        latest, sa.and_(prices.c.ticker == latest.c.ticker, prices.c.session_date == latest.c.session_date)
    )
    return {ticker: (session_date, close) for ticker, session_date, close in connection.execute(statement)}
