"""Bulk writes that SQLAlchemy has no backend-neutral form for: upsert, and COPY on PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(connection: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The INSERT of the connection's dialect, which has ON CONFLICT."""
    from sqlalchemy.dialects import postgresql, sqlite  # imported when first written to: `status` only reads

    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for {dialect}")


def insert_missing(connection: sa.Connection, table: sa.Table) -> sa.Insert:
    """An INSERT into `table` that skips rows whose primary key is stored already."""
    return dialect_insert(connection, table).on_conflict_do_nothing(index_elements=list(table.primary_key.columns))


def upsert(
    connection: sa.Connection,
    table: sa.Table,
    *,
    update: Sequence[str],
    when_changed: Sequence[str] = (),
) -> sa.Insert:
    """An INSERT into `table` that, on a primary-key conflict, overwrites the `update` columns.

    With `when_changed`, a stored row whose `when_changed` values all equal the new ones
    (NULL equal to NULL) is left alone, so RETURNING yields only the rows written.
    """
    insert = dialect_insert(connection, table)
    excluded = insert.excluded
    changed = [table.c[name].is_distinct_from(excluded[name]) for name in when_changed]
    return insert.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={name: excluded[name] for name in update},
        where=sa.or_(*changed) if changed else None,
    )


def insert_many(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Inserts many rows: with COPY through psycopg (its executemany does a statement's
    worth of work per row, several times slower for 10^5 rows), else with executemany.

    COPY skips SQLAlchemy's type processing, so `table` may only have plain column types.
    """
    if not rows:
        return
    if connection.dialect.driver != "psycopg":
        connection.execute(table.insert(), rows)
        return
    from psycopg import sql

    decorated = [column.name for column in table.columns if isinstance(column.type, sa.TypeDecorator)]
    if decorated:
        raise TypeError(f"insert_many cannot COPY {table.name}: {decorated} need SQLAlchemy's type processing")
    names = [column.name for column in table.columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(name) for name in names)
    )
    if not connection.in_transaction():
        connection.begin()  # what executing a statement would do, before the driver's cursor is used directly
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])
