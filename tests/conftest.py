"""Shared fixtures: every storage test runs on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.pgbouncer import PGBOUNCER, PgBouncer
from tests.support.postgres_server import PostgresServer, postgres_bin_dir

#: The PostgreSQL server the tests use; each test gets a fresh database on it, dropped afterwards.
POSTGRES_ADMIN_URL = os.environ.get(
    "FORECASTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def _postgres_databases() -> Iterator[Callable[..., str]]:
    names: list[str] = []
    admin = _admin_engine()

    def create(copy_of: str | None = None) -> str:
        names.append(f"fc_test_{uuid.uuid4().hex[:12]}")
        template = f' TEMPLATE "{sa.make_url(copy_of).database}"' if copy_of else ""
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{names[-1]}"{template}'))
        return sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=names[-1]).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def new_postgres_url() -> Iterator[Callable[..., str]]:
    """Makes URLs of new PostgreSQL databases, empty or copies of `copy_of` (a URL of another one
    with no connection open), dropped (with their connections) after the test."""
    with _postgres_databases() as create:
        yield create


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[Callable[..., str]]:
    """new_postgres_url for a module-scoped fixture: the databases are dropped after the module."""
    with _postgres_databases() as create:
        yield create


@pytest.fixture
def postgres_url(new_postgres_url) -> str:
    """URL of a new, empty PostgreSQL database, dropped (with its connections) after the test."""
    return new_postgres_url()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """URL of a new SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'forecaster.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str:
    """Each test that takes this runs twice: on a real SQLite file and on the real PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(fixture)


@pytest.fixture
def another_database_url(database_url, request, tmp_path) -> str:
    """A second empty database on the same backend as `database_url` (e.g. for a reference run)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'another.db'}"
    return request.getfixturevalue("new_postgres_url")()


@pytest.fixture
def migrated_engine(database_url) -> Iterator[sa.Engine]:
    """An engine (forecaster.store.database.make_engine) on a database migrated to head; on both backends."""
    yield from _migrated(database_url)


@pytest.fixture
def migrated_postgres(postgres_url) -> Iterator[sa.Engine]:
    """migrated_engine on PostgreSQL only, for what SQLite does not have (the scheduler lease)."""
    yield from _migrated(postgres_url)


def _migrated(url: str) -> Iterator[sa.Engine]:
    from forecaster.store.database import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which it may stop, restart or crash (the shared one never is)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("initdb not found (on PATH or under /usr/lib/postgresql/*/bin): cannot run a private PostgreSQL")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pgbouncer(private_postgres) -> Iterator[PgBouncer]:
    """A PgBouncer of the test's own in transaction pooling mode, in front of `private_postgres`."""
    if not Path(PGBOUNCER).exists():
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    bouncer = PgBouncer(private_postgres)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.remove()


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """For tests that call `forecaster.cli.main` in-process: the CLI installs its own log handler
    on the root logger; put back pytest's afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("forecaster", "apscheduler")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
