"""Alembic environment. forecaster.store.database.upgrade runs it with an open connection
(config.attributes["connection"]) inside a transaction that already holds the migration lock.
The `alembic` command line (alembic.ini at the repository root) works too, online or offline
(--sql), on sqlalchemy.url when set, else on the forecaster's own database setting.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext

from forecaster.store.schema import UtcDateTime, metadata


def _render_item(type_: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes UtcDateTime as the plain column type, so revisions never import the package."""
    if type_ == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(target_metadata=metadata, render_item=_render_item, **kwargs)


def _run(connection: sa.Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    from forecaster.config import load_settings

    return context.config.get_main_option("sqlalchemy.url") or load_settings().database


def main() -> None:
    config = context.config
    if context.is_offline_mode():
        url = _url()
        _configure(url=url, literal_binds=True, render_as_batch=str(url).startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from forecaster.store.database import make_engine

    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


main()
