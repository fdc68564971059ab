"""The price_events table: what the ingest saw happen to a ticker's prices, and what it did about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl
import sqlalchemy as sa

from forecaster.store.bulk import upsert
from forecaster.store.membership import one_of
from forecaster.store.schema import PRICE_EVENT_KINDS, price_events


@dataclass(frozen=True)
class PriceEvent:
    ticker: str
    session_date: date
    kind: str  # schema.PRICE_EVENT_KINDS
    detail: str  # one line
    factor: float | None = None

    def __post_init__(self) -> None:
        assert self.kind in PRICE_EVENT_KINDS, f"unknown price event {self.kind!r}"


def record_events(events: Sequence[PriceEvent], *, connection: sa.Connection, seen_at: datetime) -> None:
    """Stores events; one seen again keeps its first `seen_at` and takes the new detail and factor."""
    if not events:
        return
    latest = {(e.ticker, e.session_date, e.kind): e for e in events}  # the last word on each key
    connection.execute(
        upsert(connection, price_events, update=["factor", "detail"]),
        [
            {"ticker": t, "session_date": d, "kind": k, "factor": e.factor, "detail": e.detail, "seen_at": seen_at}
            for (t, d, k), e in latest.items()
        ],
    )


def events_of(
    tickers: Sequence[str],
    *,
    connection: sa.Connection,
    kinds: Sequence[str] = PRICE_EVENT_KINDS,
    since: date | None = None,
    through: date | None = None,
) -> pl.DataFrame:
    """(ticker, session_date, kind, factor, detail, seen_at) of `tickers`' events of `kinds` on
    sessions from `since` through `through` (each inclusive, when given), by ticker and date."""
    e = price_events.c
    statement = sa.select(e.ticker, e.session_date, e.kind, e.factor, e.detail, e.seen_at).where(
        one_of(e.ticker, tickers), e.kind.in_(list(kinds))
    )
    if since is not None:
        statement = statement.where(e.session_date >= since)
    if through is not None:
        statement = statement.where(e.session_date <= through)
    rows = connection.execute(statement.order_by(e.ticker, e.session_date, e.kind)).all()
    schema: dict[str, pl.DataType] = {
        "ticker": pl.String(),
        "session_date": pl.Date(),
        "kind": pl.String(),
        "factor": pl.Float64(),
        "detail": pl.String(),
        "seen_at": pl.Datetime("us", "UTC"),
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def gap_sessions(tickers: Sequence[str], *, connection: sa.Connection) -> set[tuple[str, date]]:
    """(ticker, session) pairs accepted as gaps: sessions with no close that are not owed a forecast."""
    if not tickers:
        return set()
    e = price_events.c
    statement = sa.select(e.ticker, e.session_date).where(one_of(e.ticker, tickers), e.kind == "gap")
    return {(ticker, session) for ticker, session in connection.execute(statement)}
