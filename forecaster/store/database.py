"""Engines and migrations: the only way a database is opened or its schema changed.

SQLite connections run in WAL mode with foreign keys on and a 30 s busy timeout, and
SQLAlchemy (not the sqlite3 module) emits BEGIN, so every transaction, DDL included,
is atomic and SAVEPOINT works (the documented recipe in SQLAlchemy's SQLite dialect docs).
"""

from __future__ import annotations

import importlib.resources
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

from forecaster.errors import DatabaseUnavailable, UserError, one_line
from forecaster.logs import redact, register_url_password

if TYPE_CHECKING:
    from alembic.config import Config

#: The Alembic scripts: `migrations/` in the source tree, installed as the package forecaster.migrations.
MIGRATIONS_DIR = Path(str(importlib.resources.files("forecaster.migrations")))

#: pg_advisory_xact_lock key held while migrating, so concurrent upgrades run one after another.
MIGRATION_LOCK_KEY = 0x666F7263  # "forc"

#: Connection execution option: begin this connection's SQLite transactions with BEGIN IMMEDIATE
#: (take the write lock at once, waiting up to the busy timeout), as a migration must.
SQLITE_IMMEDIATE = "forecaster_sqlite_immediate"

SQLITE_BUSY_TIMEOUT_S = 30
SQLITE_MMAP_BYTES = 1 << 30

_POSTGRES_NAMES = {"postgresql", "postgres"}
_EXAMPLES = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def make_engine(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for a sqlite:// or postgresql:// URL (run through psycopg 3).

    A missing SQLite file is created here, unless `create` is False (the commands that only
    read: given a path that does not exist, they fail naming it), and never by a connection:
    a file deleted under a running daemon is an error, not a new empty database.

    Raises UserError, naming the URL with its password hidden, when the URL is malformed,
    names another database, or points SQLite into a directory (or at a file) that does not exist.
    """
    register_url_password(url)  # whatever later fails on this URL, its password never shows
    parsed = _parse(url)
    shown = redact(parsed.render_as_string(hide_password=True))
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed, shown, create=create)
        engine = _create(parsed, shown)
        if path is not None:
            sa.event.listen(engine, "do_connect", _open_existing_file(path))
            sa.event.listen(engine, "connect", _remember_file(path))
            sa.event.listen(engine, "checkout", _same_file_or_reconnect(path))
        sa.event.listen(engine, "connect", _configure_sqlite)
        sa.event.listen(engine, "begin", _begin_sqlite)
        return engine
    return _create(parsed, shown)


@contextmanager
def opened_engine(url: str, *, create: bool = True) -> Iterator[sa.Engine]:
    """make_engine for one command: its pooled connections are closed when the block ends."""
    engine = make_engine(url, create=create)
    try:
        yield engine
    finally:
        engine.dispose()


def _parse(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a non-numeric port
        # The text is not echoed: it may hold a password that could not be located to hide.
        raise UserError(f"the database URL is malformed; expected {_EXAMPLES}") from None
    if parsed.drivername in _POSTGRES_NAMES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise UserError(f"{shown}: unsupported database {parsed.get_backend_name()!r}; expected {_EXAMPLES}")
    return parsed


def _sqlite_file(url: sa.URL, shown: str, *, create: bool) -> Path | None:
    """The database file (None for in-memory and URI forms), created if asked and missing."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    path = Path(url.database).expanduser()
    if not path.parent.is_dir():
        raise UserError(f"{shown}: directory {path.parent} does not exist")
    if (unwritable := _unwritable(path)) is not None:
        raise UserError(
            f"{shown}: {unwritable}; forecaster opens its database read-write and SQLite writes its journal "
            f"files beside it: put it on a writable file system or give write permission"
        )
    if not path.exists():
        if not create:
            raise UserError(f"{shown}: no database file at {path}; create it with `forecaster db upgrade`")
        try:
            sqlite3.connect(path).close()
        except sqlite3.Error as error:
            raise UserError(f"{shown}: cannot create the database file ({error})") from None
    elif path.is_file() and not _is_sqlite_file(path):
        raise UserError(f"{shown}: {path} is not a SQLite database (its first bytes say another kind of file)")
    return path


def _unwritable(path: Path) -> str | None:
    """Why the database file, or the directory that holds it (and its -wal and -shm files), cannot be
    written; None when both can (the file may not exist yet)."""
    for target, what in ((path.parent, f"directory {path.parent}"), (path, str(path))):
        if target.exists() and not os.access(target, os.W_OK):
            read_only = os.statvfs(target).f_flag & os.ST_RDONLY
            return f"{what} is on a read-only file system" if read_only else f"{what} is not writable"
    return None


#: How every SQLite database file begins (an empty file is one too: SQLite fills it at the first write).
_SQLITE_HEADER = b"SQLite format 3\x00"


def _is_sqlite_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            start = handle.read(len(_SQLITE_HEADER))
    except OSError:
        return True  # unreadable: let SQLite say why when it opens it
    return start in (b"", _SQLITE_HEADER)


def _open_existing_file(path: Path) -> Any:
    """A do_connect hook: open the file read-write without creating it (SQLite's mode=rw URI)."""

    def connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        cargs[:] = [f"file:{quote(str(path.resolve()))}?mode=rw"]
        cparams["uri"] = True

    return connect


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _remember_file(path: Path) -> Any:
    """A connect hook: note which file (device, inode) the new connection opened."""

    def connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["file"] = _file_identity(path)

    return connect


def _same_file_or_reconnect(path: Path) -> Any:
    """A checkout hook: a pooled connection whose file was deleted or replaced is discarded, and
    the new connection fails ("unable to open database file") instead of writing into a file
    nobody can see any more."""

    def checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("file") != _file_identity(path):
            raise sa.exc.DisconnectionError(f"{path} was deleted or replaced")

    return checkout


def _create(url: sa.URL, shown: str) -> sa.Engine:
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        raise UserError(f"{shown}: {str(error).splitlines()[0]}") from None
    if url.get_backend_name() == "postgresql":
        sa.event.listen(engine, "connect", _unprepared_behind_a_pooler)
    return engine


def _unprepared_behind_a_pooler(dbapi_connection: Any, _record: Any) -> None:
    """A connect hook (PostgreSQL): through a pooler such as PgBouncer the client is given the
    pooler's own backend key, not the server's backend pid. There psycopg's server-side prepared
    statements are turned off: in transaction pooling mode a statement prepared in one
    transaction may be looked for on another server connection."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (server_pid,) = cursor.fetchone()
    dbapi_connection.rollback()
    if server_pid != dbapi_connection.info.backend_pid:
        dbapi_connection.prepare_threshold = None


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN: see _begin_sqlite
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Reads through memory-mapped pages: a cycle's price windows (a million rows for 5,000
        # tickers) load in about half the time. Address space only; writes are unchanged.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        _use_wal(cursor)
    finally:
        cursor.close()


@retry(
    retry=retry_if_exception(lambda error: isinstance(error, sqlite3.OperationalError) and "locked" in str(error)),
    stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_S),
    wait=wait_fixed(0.05),
    reraise=True,
)
def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switches to WAL, retrying for the busy timeout: while another process switches a new
    file, SQLite can answer "database is locked" at once instead of waiting."""
    cursor.execute("PRAGMA journal_mode=WAL")


def _begin_sqlite(connection: sa.Connection) -> None:
    immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def shown_url(engine: sa.Engine) -> str:
    """The engine's URL with every password hidden, for messages."""
    return redact(engine.url.render_as_string(hide_password=True))


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic config for the package's migrations that runs them on `connection`."""
    from alembic.config import Config  # Alembic is imported only by the commands that migrate

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the package ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def upgrade(url_or_engine: str | sa.Engine, revision: str = "head") -> None:
    """Migrates the database to `revision` in one transaction; safe to run from several processes at once.

    On PostgreSQL the transaction first takes an advisory lock, on SQLite the write
    lock, so a second upgrader waits and then finds the work done. Raises
    DatabaseUnavailable when the database cannot be reached, UserError when it is at a
    revision this package does not know (a newer version migrated it).
    """
    from alembic import command
    from alembic.util.exc import CommandError

    with _engine(url_or_engine) as engine, _migration_connection(engine) as connection:
        config = alembic_config(connection)
        _refuse_newer_schema(connection, config, shown_url(engine))
        try:
            command.upgrade(config, revision)
        except CommandError as error:
            raise UserError(f"{shown_url(engine)}: cannot migrate: {str(error).splitlines()[0]}") from None


def _refuse_newer_schema(connection: sa.Connection, config: Config, shown: str) -> None:
    """A database at a revision this package does not ship was migrated by a newer forecaster."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(config)
    at = MigrationContext.configure(connection).get_current_revision()
    known = {script.revision for script in scripts.walk_revisions()}
    if at is not None and at not in known:
        raise UserError(
            f"{shown}: made by a newer version of forecaster (its tables are at revision {at!r}, this "
            f"version knows up to {scripts.get_current_head()!r}): upgrade forecaster"
        )


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _engine(url_or_engine: str | sa.Engine) -> Iterator[sa.Engine]:
    if isinstance(url_or_engine, sa.Engine):
        yield url_or_engine
        return
    engine = make_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _migration_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside a transaction that holds the migration lock; committed on success."""
    try:
        connection = engine.connect()
    except sa.exc.OperationalError as error:
        raise DatabaseUnavailable(f"{shown_url(engine)}: cannot connect: {one_line(error)}") from None
    with connection:
        if engine.dialect.name == "sqlite":
            connection.execution_options(**{SQLITE_IMMEDIATE: True})
        with connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            yield connection
