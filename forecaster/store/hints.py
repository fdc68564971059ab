"""`not_indexed(column)`: a column no index may be chosen for, where SQLite would choose wrong.

SQLite plans with the statistics ANALYZE leaves, and without them (or with sampled ones) it may
answer a join through an index on a range it guesses narrow: the join of forecast_series to
predictions went through (preset, as_of), reading every forecast of the preset for each series
(25-34 s a catch-up after a year of 1,000 tickers, against 0.17 s by the primary key). A unary
plus before a column is SQLite's documented way to keep a term off every index; PostgreSQL plans
by its own statistics (autovacuum keeps them), so there it is the column itself.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal


class _NotIndexed(sa.ColumnElement[Any]):
    inherit_cache = True
    #: The column is part of the statement's cache key: without it, not_indexed(a) and
    #: not_indexed(b) in statements alike would share one compiled form.
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type

    @property
    def _from_objects(self) -> list[sa.FromClause]:
        return self.column._from_objects


def not_indexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return _NotIndexed(column)


@compiles(_NotIndexed)
def _plain(element: _NotIndexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_NotIndexed, "sqlite")
def _unary_plus(element: _NotIndexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.column, **kw)}"
