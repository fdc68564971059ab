"""Whole-table snapshots, to compare a database before and after an operation."""

from __future__ import annotations

import sqlalchemy as sa

#: The tables whose content is the product: a rerun must leave them exactly as they were.
PRODUCT_TABLES = ("prices", "predictions", "model_states", "training_losses")


#: Columns that say when, or by which run, a row was written: two runs that did the same work
#: legitimately differ in them and nothing else.
BOOKKEEPING_COLUMNS = frozenset({"run_id", "created_at", "fetched_at"})


def snapshot(
    engine: sa.Engine, tables: tuple[str, ...] = PRODUCT_TABLES, *, without: frozenset[str] = frozenset()
) -> dict[str, list[tuple]]:
    """Every row of each table, in primary-key order, leaving out the columns named in `without`."""
    metadata = sa.MetaData()
    result = {}
    with engine.connect() as connection:
        for name in tables:
            table = sa.Table(name, metadata, autoload_with=connection)
            order = list(table.primary_key.columns) or list(table.columns)
            columns = [column for column in table.columns if column.name not in without]
            result[name] = [tuple(row) for row in connection.execute(sa.select(*columns).order_by(*order))]
    return result


def product(engine: sa.Engine) -> dict[str, list[tuple]]:
    """The product tables without their bookkeeping columns: what an uninterrupted run and a
    crashed-and-resumed one must agree on exactly."""
    return snapshot(engine, without=BOOKKEEPING_COLUMNS)


def count_rows(engine: sa.Engine, table: str, where: str = "1=1") -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()
