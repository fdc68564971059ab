"""The prices table: bulk upsert that is idempotent, and reads back in the long frame layout."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from forecaster.price_frame import PRICE_SCHEMA
from forecaster.store.prices import (
    earliest_closes,
    latest_closes,
    load_closes,
    record_requested,
    requested_from,
    upsert_prices,
)
from forecaster.store.schema import prices

FETCHED = datetime(2024, 3, 5, 23, 0, tzinfo=UTC)


def price_frame(*rows: tuple) -> pl.DataFrame:
    """Rows of (ticker, session_date, open, high, low, close, adj_close, volume)."""
    return pl.DataFrame(list(rows), schema=PRICE_SCHEMA, orient="row")


THREE_DAYS = price_frame(
    ("SPY", date(2024, 3, 1), 510.0, 513.0, 509.5, 512.5, 512.5, 7.0e7),
    ("QQQ", date(2024, 3, 1), 440.0, 445.0, 439.0, 444.0, None, 4.1e7),
    ("SPY", date(2024, 3, 4), 512.0, 514.0, 511.0, 512.0, 512.0, 6.5e7),
    ("SPY", date(2024, 3, 5), None, None, None, 507.0, None, None),
)


def whole_table(connection: sa.Connection) -> list[tuple]:
    return [tuple(row) for row in connection.execute(sa.select(prices).order_by(*prices.primary_key.columns))]


def as_frame(connection: sa.Connection) -> pl.DataFrame:
    """The prices table in the long frame layout, sorted by ticker and date."""
    statement = sa.select(*(prices.c[name] for name in PRICE_SCHEMA)).order_by(prices.c.ticker, prices.c.session_date)
    return pl.DataFrame(connection.execute(statement).all(), schema=PRICE_SCHEMA, orient="row")


def test_stored_prices_read_back_as_the_same_frame_sorted_by_ticker_and_date(migrated_engine):
    with migrated_engine.begin() as connection:
        assert upsert_prices(THREE_DAYS, connection=connection, source="csv", fetched_at=FETCHED) == 4
    with migrated_engine.connect() as connection:
        loaded = as_frame(connection)
    assert_frame_equal(loaded, THREE_DAYS.sort("ticker", "session_date"))


def test_storing_the_same_prices_again_changes_nothing(migrated_engine):
    with migrated_engine.begin() as connection:
        upsert_prices(THREE_DAYS, connection=connection, source="csv", fetched_at=FETCHED)
        before = whole_table(connection)
    with migrated_engine.begin() as connection:
        written = upsert_prices(
            THREE_DAYS, connection=connection, source="yahoo", fetched_at=FETCHED + timedelta(days=1)
        )
        after = whole_table(connection)
    assert written == 0
    assert after == before


def test_a_changed_price_is_overwritten_with_its_new_source_and_fetch_time(migrated_engine):
    refetched = price_frame(
        ("SPY", date(2024, 3, 5), 508.0, 509.0, 505.0, 507.25, 507.25, 6.0e7),  # the close was revised
        ("SPY", date(2024, 3, 4), 512.0, 514.0, 511.0, 512.0, 512.0, 6.5e7),  # unchanged
        ("SPY", date(2024, 3, 6), 507.0, 510.0, 506.0, 509.0, 509.0, 5.5e7),  # new
    )
    later = FETCHED + timedelta(days=1)
    with migrated_engine.begin() as connection:
        upsert_prices(THREE_DAYS, connection=connection, source="csv", fetched_at=FETCHED)
        assert upsert_prices(refetched, connection=connection, source="yahoo", fetched_at=later) == 2
        rows = {(row[0], row[1]): row for row in whole_table(connection)}
    assert rows["SPY", date(2024, 3, 5)][5:] == (507.25, 507.25, 6.0e7, "yahoo", later)
    assert rows["SPY", date(2024, 3, 4)][8:] == ("csv", FETCHED)
    assert rows["SPY", date(2024, 3, 6)][8:] == ("yahoo", later)
    assert len(rows) == 5


def test_fetch_times_are_stored_in_utc_and_read_back_aware_and_naive_ones_are_refused(migrated_engine):
    new_york = timezone(timedelta(hours=-5))
    with migrated_engine.begin() as connection:
        upsert_prices(
            THREE_DAYS.head(1),
            connection=connection,
            source="csv",
            fetched_at=datetime(2024, 3, 5, 18, 0, tzinfo=new_york),
        )
        fetched_at = connection.execute(sa.select(prices.c.fetched_at)).scalar_one()
    assert fetched_at == FETCHED
    assert fetched_at.tzinfo == UTC
    with pytest.raises(ValueError, match="has no timezone"), migrated_engine.begin() as connection:
        upsert_prices(THREE_DAYS, connection=connection, source="csv", fetched_at=datetime(2024, 3, 5, 23, 0))


def test_nan_is_stored_as_null(migrated_engine):
    frame = price_frame(("SPY", date(2024, 3, 1), math.nan, 513.0, 509.5, 512.5, math.nan, 7.0e7))
    with migrated_engine.begin() as connection:
        upsert_prices(frame, connection=connection, source="csv", fetched_at=FETCHED)
        loaded = as_frame(connection)
    assert loaded.row(0)[2] is None and loaded.row(0)[6] is None


def test_a_frame_that_repeats_a_key_or_lacks_a_column_is_refused_before_writing(migrated_engine):
    with migrated_engine.begin() as connection:
        with pytest.raises(ValueError, match="repeats 2 .* SPY 2024-03-01"):
            upsert_prices(
                pl.concat([THREE_DAYS.head(1), THREE_DAYS]), connection=connection, source="csv", fetched_at=FETCHED
            )
        with pytest.raises(ValueError, match=r"lacks columns \['volume'\]"):
            upsert_prices(THREE_DAYS.drop("volume"), connection=connection, source="csv", fetched_at=FETCHED)
        assert upsert_prices(THREE_DAYS.clear(), connection=connection, source="csv", fetched_at=FETCHED) == 0
        assert whole_table(connection) == []


def test_the_closes_of_a_cycle_are_read_by_ticker_and_inclusive_date_range(migrated_engine):
    with migrated_engine.begin() as connection:
        upsert_prices(THREE_DAYS, connection=connection, source="csv", fetched_at=FETCHED)
    with migrated_engine.connect() as connection:
        spy = load_closes(["SPY", "IWM"], connection=connection, start=date(2024, 3, 4), end=date(2024, 3, 5))
        nothing = load_closes([], connection=connection, start=date(2024, 3, 1), end=date(2024, 3, 5))
    assert spy.rows() == [("SPY", date(2024, 3, 4), 512.0), ("SPY", date(2024, 3, 5), 507.0)]
    assert nothing.is_empty()


def test_latest_closes_name_only_tickers_with_prices(migrated_engine):
    with migrated_engine.begin() as connection:
        upsert_prices(THREE_DAYS, connection=connection, source="csv", fetched_at=FETCHED)
        latest = latest_closes(["SPY", "QQQ", "IWM"], connection=connection)
        assert latest_closes([], connection=connection) == {}
    assert latest == {"SPY": (date(2024, 3, 5), 507.0), "QQQ": (date(2024, 3, 1), 444.0)}


def test_the_latest_close_is_found_among_recent_sessions_or_else_in_the_whole_history(migrated_engine):
    with migrated_engine.begin() as connection:
        upsert_prices(THREE_DAYS, connection=connection, source="csv", fetched_at=FETCHED)
        latest = latest_closes(["SPY", "QQQ"], connection=connection, probably_since=date(2024, 3, 4))
        earliest = earliest_closes(["SPY", "QQQ", "IWM"], connection=connection)
    assert latest == {"SPY": (date(2024, 3, 5), 507.0), "QQQ": (date(2024, 3, 1), 444.0)}  # QQQ: none since
    assert earliest == {"SPY": (date(2024, 3, 1), 512.5), "QQQ": (date(2024, 3, 1), 444.0)}


def test_how_far_back_the_source_was_asked_keeps_the_earliest_ask(migrated_engine):
    with migrated_engine.begin() as connection:
        record_requested({"SPY": date(2024, 1, 2), "QQQ": date(2024, 2, 1)}, connection=connection)
        record_requested({"SPY": date(2024, 2, 1), "QQQ": date(2023, 12, 1)}, connection=connection)
        asked = requested_from(["SPY", "QQQ", "IWM"], connection=connection)
    assert asked == {"SPY": date(2024, 1, 2), "QQQ": date(2023, 12, 1)}
