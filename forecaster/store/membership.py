"""`one_of(column, values)`: column IN values, for a list of any length.

SQLAlchemy sends `column.in_(values)` with one bound parameter per value, and PostgreSQL's
protocol takes at most 65,535 parameters in a statement: a watch list of 100,000 tickers could
not be asked about. On PostgreSQL this sends the list as one array parameter instead
(`column = ANY(%(values)s)`), which also spares the server a statement as long as the list. On
SQLite it stays an IN list (Debian's SQLite, the image's too, takes 250,000 parameters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler


class _OneOf(sa.ColumnElement[bool]):
    #: Its values are a plain list, not part of a cache key: statements holding it are compiled anew.
    inherit_cache = False
    type = sa.Boolean()
    _is_implicitly_boolean = True  # a comparison: no "= 1" after it in a WHERE on SQLite

    def __init__(self, column: sa.ColumnElement[Any], values: Iterable[Any]) -> None:
        self.column = column
        self.values = list(values)

    @property
    def _from_objects(self) -> list[sa.FromClause]:
        return self.column._from_objects


def one_of(column: sa.ColumnElement[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """`column` is one of `values` (any number of them)."""
    return _OneOf(column, values)


@compiles(_OneOf)
def _in_list(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.values), **kw)


@compiles(_OneOf, "postgresql")
def _any_of_array(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    from sqlalchemy.dialects.postgresql import ARRAY

    array = sa.bindparam(None, element.values, type_=ARRAY(element.column.type))
    return compiler.process(element.column == sa.any_(array), **kw)
