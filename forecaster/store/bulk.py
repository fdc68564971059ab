"""Bulk writes that SQLAlchemy has no backend-neutral form for: upsert, and COPY on PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
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


def _sqlite_value(value: Any) -> Any:
    """A date as SQLAlchemy stores it in SQLite (ISO text), without sqlite3's deprecated adapter."""
    return value.isoformat() if isinstance(value, date) else value


def insert_many(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Inserts many rows: with COPY through psycopg (its executemany does a statement's
    worth of work per row, several times slower for 10^5 rows), else with the driver's
    executemany.

    Both skip SQLAlchemy's type processing (a third of the time for 10^5 rows), so `table`
    may only have plain column types.
    """
    if not rows:
        return
    decorated = [column.name for column in table.columns if isinstance(column.type, sa.TypeDecorator)]
    if decorated:
        raise TypeError(f"insert_many cannot bypass type processing for {table.name}: {decorated} need it")
    if connection.dialect.driver != "psycopg":  # SQLite: the driver's executemany on plain tuples
        names = [column.name for column in table.columns]
        statement = f'INSERT INTO {table.name} ({", ".join(names)}) VALUES ({", ".join("?" for _ in names)})'
        connection.exec_driver_sql(statement, [tuple(_sqlite_value(row[name]) for name in names) for row in rows])
        return
    from psycopg import sql

    names = [column.name for column in table.columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(name) for name in names)
    )
    if not connection.in_transaction():
        connection.begin()  # what executing a statement would do, before the driver's cursor is used directly
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])
