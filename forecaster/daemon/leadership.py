"""Which `forecaster run` process schedules the cycles: exactly one per database.

PostgreSQL: the holder of a session advisory lock, kept on a connection of its own;
when that process dies the lock goes with its connection and another process takes
over at its next try. Every process, the scheduler included, works on the cycles'
tasks. SQLite: one process at all (an exclusive lock on a file beside the database),
since SQLite has one writer; a second process is refused with a clear error.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from forecaster.errors import UserError

log = logging.getLogger(__name__)

#: pg_try_advisory_lock key of the scheduler role ("fcst").
SCHEDULER_LOCK_KEY = 0x66637374


class Leadership:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_leader = False
        self._connection: sa.Connection | None = None
        self._lock_file: IO[str] | None = None

    @property
    def single_process(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def try_acquire(self) -> bool:
        """Takes the scheduler role if it is free; True while this process holds it."""
        if self.is_leader:
            return True
        if self.single_process:
            self._lock_sqlite()
        else:
            self._connection = self._connection or self.engine.connect()
            self.is_leader = bool(
                self._connection.execute(sa.select(sa.func.pg_try_advisory_lock(SCHEDULER_LOCK_KEY))).scalar_one()
            )
            self._connection.commit()
        return self.is_leader

    def _lock_sqlite(self) -> None:
        database = self.engine.url.database or ""
        path = Path(f"{database}.lock")
        self._lock_file = open(path, "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise UserError(
                f"{database}: another forecaster process is running on this SQLite database; "
                "SQLite supports a single worker, use PostgreSQL for several"
            ) from None
        self.is_leader = True

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # ends the session, and with it the advisory lock
        if self._lock_file is not None:
            self._lock_file.close()
        self.is_leader = False
