"""Daily prices: bulk upsert, and reads back into the long polars frame."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl
import sqlalchemy as sa

from forecaster.price_frame import PRICE_SCHEMA
from forecaster.store.bulk import bound, dialect_insert, insert_frame, upsert_frame
from forecaster.store.membership import one_of
from forecaster.store.schema import SOURCE_LENGTH, price_history, prices

PRICE_COLUMNS = tuple(PRICE_SCHEMA)
_VALUE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


#: Rows per statement: bounds the memory of storing millions of rows (5,000 new tickers' history).
BATCH_ROWS = 50_000


def upsert_prices(
    frame: pl.DataFrame,
    *,
    connection: sa.Connection,
    source: str,
    fetched_at: datetime,
    new_tickers: Collection[str] = (),
) -> int:
    """Stores the long price frame, in batches; returns how many rows were inserted or changed.

    A stored (ticker, session_date) is rewritten, with this `source` and `fetched_at`,
    only when one of its price values differs, so storing the same prices again changes
    nothing: `fetched_at` says when a row's values were last written. The rows of
    `new_tickers` (the caller knows nothing is stored for them) are plainly inserted, which
    is cheaper. NaN is stored as NULL (SQLite cannot store NaN), so a NaN close is refused by
    the NOT NULL constraint.
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
            f"price frame repeats {duplicated.height} (ticker, session_date) keys, "
            f"e.g. {first['ticker']} {first['session_date']}"
        )
    source = _fitting(source, SOURCE_LENGTH)
    values = frame.select(PRICE_COLUMNS).with_columns(
        pl.col(_VALUE_COLUMNS).cast(pl.Float64).fill_nan(None),
        pl.lit(source).alias("source"),
        pl.lit(bound(connection, prices.c.fetched_at, fetched_at)).alias("fetched_at"),
    )
    is_new = pl.col("ticker").is_in(list(new_tickers))
    new = values.filter(is_new)
    for batch in new.iter_slices(BATCH_ROWS):
        insert_frame(connection, prices, batch)
    update = [*_VALUE_COLUMNS, "source", "fetched_at"]
    written = new.height
    for batch in values.filter(~is_new).iter_slices(BATCH_ROWS):
        written += upsert_frame(connection, prices, batch, update=update, when_changed=_VALUE_COLUMNS)
    return written


@dataclass(frozen=True)
class Rebase:
    """Multiply a ticker's stored prices from `start` (None: its first) to before `end` (None: its
    last, included) by `factor`, its volumes by `volume_factor`: one restatement of its history."""

    ticker: str
    start: date | None
    end: date | None
    factor: float
    volume_factor: float = 1.0


def rebase_prices(rebases: Sequence[Rebase], *, connection: sa.Connection) -> None:
    """Applies each rebase to the stored open, high, low, close and adjusted close (and volume)."""
    for rebase in rebases:
        condition = [prices.c.ticker == rebase.ticker]
        if rebase.start is not None:
            condition.append(prices.c.session_date >= rebase.start)
        if rebase.end is not None:
            condition.append(prices.c.session_date < rebase.end)
        scaled = {name: prices.c[name] * rebase.factor for name in ("open", "high", "low", "close", "adj_close")}
        if rebase.volume_factor != 1.0:
            scaled["volume"] = prices.c.volume * rebase.volume_factor
        connection.execute(prices.update().where(*condition).values(**scaled))


def _fitting(name: str, length: int) -> str:
    """A source's name as the column holds it: a long one (a csv: source's path) keeps its end."""
    return name if len(name) <= length else f"{name[:4]}…{name[-(length - 5) :]}"


def load_closes(tickers: Sequence[str], *, connection: sa.Connection, start: date, end: date) -> pl.DataFrame:
    """(ticker, session_date, close) of `tickers` from `start` to `end` inclusive, sorted by ticker
    and date: the daily cycle's training input, about 250 rows a ticker. Dates travel as ISO
    text and are parsed by polars at once, and rows skip SQLAlchemy's per-row processing
    (several times faster for a million rows)."""
    if not tickers:
        return pl.DataFrame(schema={"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64})
    statement = (
        sa.select(prices.c.ticker, sa.cast(prices.c.session_date, sa.String), prices.c.close)
        .where(one_of(prices.c.ticker, tickers), prices.c.session_date.between(start, end))
        .order_by(prices.c.ticker, prices.c.session_date)
    )
    result = connection.execute(statement)
    rows = result.cursor.fetchall()  # plain tuples: every column is already a plain Python value
    result.close()
    frame = pl.DataFrame(
        rows, schema={"ticker": pl.String, "session_date": pl.String, "close": pl.Float64}, orient="row"
    )
    return frame.with_columns(pl.col("session_date").str.to_date("%Y-%m-%d"))


def latest_closes(
    tickers: Sequence[str], *, connection: sa.Connection, probably_since: date | None = None
) -> dict[str, tuple[date, float]]:
    """Each ticker's last stored (session_date, close); tickers with no prices are absent.

    With `probably_since`, the tickers with a close on or after that date are answered from those
    rows alone (an index range instead of every row of a ticker's history: 5,000 tickers of a
    daily cycle in a few hundredths of a second), and only the others from their whole history.
    """
    if probably_since is None:
        return _closes_at(sa.func.max, tickers, connection)
    recent = _closes_at(sa.func.max, tickers, connection, since=probably_since)
    return recent | _closes_at(sa.func.max, [t for t in tickers if t not in recent], connection)


def earliest_closes(tickers: Sequence[str], *, connection: sa.Connection) -> dict[str, tuple[date, float]]:
    """Each ticker's first stored (session_date, close); tickers with no prices are absent."""
    return _closes_at(sa.func.min, tickers, connection)


def _closes_at(
    pick: Callable[[sa.ColumnElement[date]], sa.ColumnElement[date]],
    tickers: Sequence[str],
    connection: sa.Connection,
    since: date | None = None,
) -> dict[str, tuple[date, float]]:
    if not tickers:
        return {}
    chosen = sa.select(prices.c.ticker, pick(prices.c.session_date).label("session_date")).where(
        one_of(prices.c.ticker, tickers)
    )
    if since is not None:
        chosen = chosen.where(prices.c.session_date >= since)
    picked = chosen.group_by(prices.c.ticker).subquery()
    statement = sa.select(prices.c.ticker, prices.c.session_date, prices.c.close).join(
        picked, sa.and_(prices.c.ticker == picked.c.ticker, prices.c.session_date == picked.c.session_date)
    )
    return {ticker: (session_date, close) for ticker, session_date, close in connection.execute(statement)}


def requested_from(tickers: Sequence[str], *, connection: sa.Connection) -> dict[str, date]:
    """How far back the source has been asked for each ticker (absent: never asked)."""
    if not tickers:
        return {}
    statement = sa.select(price_history.c.ticker, price_history.c.requested_from).where(
        one_of(price_history.c.ticker, tickers)
    )
    return {ticker: since for ticker, since in connection.execute(statement)}


def record_requested(starts: Mapping[str, date], *, connection: sa.Connection) -> None:
    """Remembers that the source was asked for each ticker from its date on (the earliest ask is kept)."""
    if not starts:
        return
    insert = dialect_insert(connection, price_history)
    earlier = sa.case(
        (insert.excluded.requested_from < price_history.c.requested_from, insert.excluded.requested_from),
        else_=price_history.c.requested_from,
    )
    statement = insert.on_conflict_do_update(index_elements=[price_history.c.ticker], set_={"requested_from": earlier})
    connection.execute(statement, [{"ticker": t, "requested_from": d} for t, d in starts.items()])
