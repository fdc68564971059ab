"""Whole-table snapshots, to compare a database before and after an operation."""

from __future__ import annotations

import sqlalchemy as sa

#: The tables whose content is the product: a rerun must leave them exactly as they were.
PRODUCT_TABLES = ("prices", "predictions", "model_states", "training_losses")


def snapshot(engine: sa.Engine, tables: tuple[str, ...] = PRODUCT_TABLES) -> dict[str, list[tuple]]:
    """Every row of each table, in primary-key order."""
    metadata = sa.MetaData()
    result = {}
    with engine.connect() as connection:
        for name in tables:
            table = sa.Table(name, metadata, autoload_with=connection)
            order = list(table.primary_key.columns) or list(table.columns)
            result[name] = [tuple(row) for row in connection.execute(sa.select(table).order_by(*order))]
    return result


def count_rows(engine: sa.Engine, table: str, where: str = "1=1") -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()
