"""not_indexed: a unary plus on SQLite, the column itself elsewhere, and part of the statement's cache key."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from forecaster.store.hints import not_indexed
from forecaster.store.schema import predictions


def _after(column: sa.Column) -> sa.Select:
    return sa.select(predictions.c.ticker).where(not_indexed(column) > sa.bindparam("day"))


def test_on_sqlite_the_column_gets_a_unary_plus_and_elsewhere_stays_as_it_is():
    statement = _after(predictions.c.as_of)

    assert str(statement.compile(dialect=sqlite.dialect())).endswith("WHERE +predictions.as_of > ?")
    assert str(statement.compile(dialect=postgresql.dialect())).endswith("WHERE predictions.as_of > %(day)s::DATE")


def test_statements_alike_but_for_the_column_are_cached_apart():
    assert _after(predictions.c.as_of)._generate_cache_key() == _after(predictions.c.as_of)._generate_cache_key()
    assert (
        _after(predictions.c.as_of)._generate_cache_key() != _after(predictions.c.target_session)._generate_cache_key()
    )
