"""The scheduler lock: which process starts cycles and runs on a database, exactly one at a time.

PostgreSQL: a session advisory lock held on a connection of its own, outside the pool. It
vanishes silently with that connection (a server restart, a network cut), so the holder
checks before every cycle that the connection is alive and the lock is still its own
(`verify`), and steps down when it is not. `forecaster run` daemons that do not hold it work
on the cycles' tasks and try to take it every few seconds; `run --once` and `backfill` take it
for their whole run, or refuse to start.

SQLite: one process at all (an exclusive lock on a file beside the database, keyed on the
file's real path), since SQLite has one writer: a second writing command is refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from forecaster.errors import UserError

log = logging.getLogger(__name__)

#: pg_try_advisory_lock key of the scheduler role ("fcst").
SCHEDULER_LOCK_KEY = 0x66637374
#: The application_name of the connection that holds the lock, so a refused process can say who holds it.
APPLICATION_NAME = "forecaster scheduler"

_HELD = """
SELECT 1 FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
  AND classid = :high AND objid = :low AND objsubid = 1
"""
_HOLDER = """
SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :high AND l.objid = :low AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class Leadership:
    """The scheduler lock of one process on one database."""

    def __init__(self, engine: sa.Engine, *, role: str = "forecaster") -> None:
        self.engine = engine
        self.role = role  # what this process is, shown to a process refused the lock
        self.is_leader = False
        self._connection: sa.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._mutex = threading.Lock()  # the daemon's main thread and its job thread both verify

    @property
    def single_process(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def try_acquire(self) -> bool:
        """Takes the lock if it is free; True while this process holds it. Database errors
        (the server is down) propagate; the caller retries later."""
        with self._mutex:
            if self.is_leader:
                return True
            if self.single_process:
                return self._lock_sqlite()
            self._drop_connection()
            connection = self.engine.connect()
            try:
                name = f"{APPLICATION_NAME}: {self.role} on {socket.gethostname()} pid {os.getpid()}"
                connection.execute(sa.text("SELECT set_config('application_name', :name, false)"), {"name": name[:63]})
                self.is_leader = bool(
                    connection.execute(sa.select(sa.func.pg_try_advisory_lock(SCHEDULER_LOCK_KEY))).scalar_one()
                )
                connection.commit()
            except BaseException:
                connection.invalidate()
                connection.close()
                raise
            if self.is_leader:
                self._connection = connection
            else:
                connection.close()
            return self.is_leader

    def acquire_or_refuse(self) -> None:
        """Takes the lock, or raises UserError naming the process that holds it."""
        if self.try_acquire():
            return
        if self.single_process:
            raise UserError(
                f"{self.engine.url.database}: {self._holder()} is using this SQLite database; "
                "SQLite supports a single worker, use PostgreSQL for several"
            )
        raise UserError(
            f"{self._holder()} holds this database's scheduler lock; "
            "a running daemon catches up by itself: stop it first to run this"
        )

    def verify(self) -> bool:
        """True if this process still holds the lock (PostgreSQL: its connection is alive and the
        lock is in pg_locks under its backend). A lost lock is dropped here for good."""
        with self._mutex:
            if not self.is_leader or self.single_process:
                return self.is_leader
            assert self._connection is not None
            high, low = divmod(SCHEDULER_LOCK_KEY, 1 << 32)
            try:
                held = self._connection.execute(sa.text(_HELD), {"high": high, "low": low}).first() is not None
                self._connection.commit()
            except sa.exc.DBAPIError:
                held = False
            if not held:
                log.warning("lost the scheduler lock (its database connection ended or the lock is gone)")
                self.is_leader = False
                self._drop_connection()
            return held

    def release(self) -> None:
        with self._mutex:
            self._drop_connection()  # ends the session, and with it the advisory lock
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None
            self.is_leader = False

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sa.exc.DBAPIError:
                self._connection.invalidate()
            self._connection = None

    def _holder(self) -> str:
        if self.single_process:
            return f"another forecaster process ({self._lock_path().read_text().strip() or 'unknown'})"
        high, low = divmod(SCHEDULER_LOCK_KEY, 1 << 32)
        with self.engine.connect() as connection:
            row = connection.execute(sa.text(_HOLDER), {"high": high, "low": low}).first()
        if row is None:
            return "another process (it has just let go; try again)"
        name = row.application_name.removeprefix(f"{APPLICATION_NAME}: ")
        return f"another process ({name}, connected from {row.client_addr or 'a local socket'})"

    def _lock_path(self) -> Path:
        database = self.engine.url.database or ""
        return Path(f"{Path(database).resolve()}.lock")

    def _lock_sqlite(self) -> bool:
        if not self.engine.url.database or self.engine.url.database == ":memory:":
            self.is_leader = True
            return True
        path = self._lock_path()
        try:
            lock_file = open(path, "a+")  # noqa: SIM115 (held open: the open file is the lock while we lead)
        except OSError as error:
            raise UserError(f"{path}: cannot create the lock file beside the database ({error.strerror})") from None
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            return False
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"{self.role} on {socket.gethostname()} pid {os.getpid()}\n")
        lock_file.flush()
        self._lock_file = lock_file
        self.is_leader = True
        return True
