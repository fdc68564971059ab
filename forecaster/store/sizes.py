"""How much room each table takes, its indexes included (`forecaster db size`)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from forecaster.store.schema import metadata


@dataclass(frozen=True)
class TableSize:
    table: str
    rows: int
    bytes: int | None  # None: this SQLite build cannot say (it lacks the dbstat table)


def table_sizes(connection: sa.Connection) -> list[TableSize]:
    """Every table of the schema, largest first: its rows, and the bytes of its pages and its indexes'."""
    names = [table.name for table in metadata.sorted_tables]
    rows = {
        name: connection.execute(sa.select(sa.func.count()).select_from(metadata.tables[name])).scalar_one()
        for name in names
    }
    stored = (
        _postgres_bytes(connection, names) if connection.dialect.name == "postgresql" else _sqlite_bytes(connection)
    )
    sizes = [TableSize(name, rows[name], stored.get(name) if stored is not None else None) for name in names]
    return sorted(sizes, key=lambda size: (-(size.bytes or 0), -size.rows, size.table))


def _postgres_bytes(connection: sa.Connection, names: list[str]) -> dict[str, int]:
    statement = sa.text("SELECT pg_total_relation_size(CAST(:name AS regclass))")
    return {name: connection.execute(statement, {"name": name}).scalar_one() for name in names}


def _sqlite_bytes(connection: sa.Connection) -> dict[str, int] | None:
    """Bytes per table from SQLite's dbstat table, each index counted with its table."""
    statement = sa.text(
        "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat AS d JOIN sqlite_master AS m ON m.name = d.name "
        "GROUP BY m.tbl_name"
    )
    try:
        return {name: int(size) for name, size in connection.execute(statement)}
    except sa.exc.OperationalError:  # "no such table: dbstat": built without SQLITE_ENABLE_DBSTAT_VTAB
        return None
