"""The scheduler lock: which process starts cycles and runs on a database, exactly one at a time.

PostgreSQL: a lease row (forecaster.store.scheduler_lease) that the holder renews every few
seconds in short transactions, so it works through PgBouncer in transaction pooling mode and
survives a server restart. A holder that stops renewing (killed, frozen, cut off) loses it
once it expires; another process then takes it with the next epoch, and every write only the
holder may make (runs started and finished, tasks enqueued, series started) checks the epoch in
its own transaction (`fence`), so a former holder that wakes up writes nothing. `forecaster
run` daemons that do not hold it work on the cycles' tasks and try to take it every few
seconds; `run --once`, `backfill` and `db prune` take it for their whole run, or refuse to start.

SQLite: one process at all (an exclusive lock on a file beside the database, keyed on the
file's real path), since SQLite has one writer: a second writing command is refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from forecaster.errors import UserError, one_line
from forecaster.store import scheduler_lease as lease_store

log = logging.getLogger(__name__)

#: How long the lease lasts unrenewed: how soon another process takes over from a dead holder.
LEASE_SECONDS = 15.0
#: How often the holder renews it, from a thread of its own.
RENEW_SECONDS = 3.0
#: `verify` asks the database again only when the last renewal is older than this.
VERIFIED_FOR_SECONDS = 1.0
#: The host and pid in a lease holder's name ("<role> on <host> pid <pid> #<token>").
_HOLDER_PROCESS = re.compile(r" on (?P<host>\S+) pid (?P<pid>\d+) #[0-9a-f]+$")


class Leadership:
    """The scheduler lock of one process on one database."""

    def __init__(self, engine: sa.Engine, *, role: str = "forecaster", lease_seconds: float = LEASE_SECONDS) -> None:
        self.engine = engine
        self.role = role  # what this process is, shown to a process refused the lock
        self.lease_seconds = lease_seconds
        #: who this process is in the lease row; the token tells a restarted process with the same pid apart
        self.holder = f"{role} on {socket.gethostname()} pid {os.getpid()} #{uuid.uuid4().hex[:8]}"[-255:]
        self.is_leader = False
        self.epoch: int | None = None  # the lease's epoch while this process holds it (PostgreSQL)
        self._renewed_at = 0.0  # time.monotonic() of the last renewal the database confirmed
        self._stop_renewing = threading.Event()
        self._lock_file: IO[str] | None = None
        self._mutex = threading.Lock()  # the main thread, the job thread and the renewer all verify

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
            with self.engine.begin() as connection:
                dead = self._dead_holder(connection)
                epoch = lease_store.take(self.holder, self.lease_seconds, connection=connection, replacing=dead)
            if epoch is None:
                return False
            if dead is not None:
                log.info("took the scheduler lock over from %s, which no longer runs", _without_token(dead))
            self.epoch, self.is_leader, self._renewed_at = epoch, True, time.monotonic()
            self._stop_renewing = threading.Event()
            threading.Thread(
                target=self._keep_renewed, args=(self._stop_renewing,), name="scheduler-lease", daemon=True
            ).start()
            return True

    def acquire_or_refuse(self) -> None:
        """Takes the lock, or raises UserError naming the process that holds it."""
        if self.try_acquire():
            return
        if self.single_process:
            raise UserError(
                f"{self.engine.url.database}: {self._holder()} is using this SQLite database; "
                "SQLite supports a single worker, use PostgreSQL for several"
            )
        holder = self._holder()
        advice = (
            "a running daemon catches up by itself: stop it first to run this"
            if "forecaster run on" in holder
            else "wait for it to finish"
        )
        raise UserError(f"{holder} holds this database's scheduler lock; {advice}")

    def verify(self) -> bool:
        """True if this process still holds the lock (PostgreSQL: its lease renews). A lost lock
        is dropped here for good; while the database is unreachable the lease counts as held
        until it would have expired (every write the holder makes is fenced anyway)."""
        with self._mutex:
            if not self.is_leader or self.single_process:
                return self.is_leader
            if time.monotonic() - self._renewed_at < VERIFIED_FOR_SECONDS:
                return True
            return self._renew()

    def fence(self, connection: sa.Connection) -> bool:
        """For a write only the holder may make, first in its transaction: True while this
        process holds the lock, and (PostgreSQL) no other process can take it before that
        transaction ends."""
        if self.single_process:
            return self.is_leader
        epoch = self.epoch
        return epoch is not None and lease_store.fence(self.holder, epoch, connection=connection)

    def release(self) -> None:
        with self._mutex:
            self._stop_renewing.set()
            if self.is_leader and not self.single_process and self.epoch is not None:
                try:
                    with self.engine.begin() as connection:
                        lease_store.give_up(self.holder, self.epoch, connection=connection)
                except sa.exc.DBAPIError:
                    pass  # the database is away: the lease expires by itself
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None
            self.is_leader, self.epoch = False, None

    def _dead_holder(self, connection: sa.Connection) -> str | None:
        """The lease's holder if it is a process of this host that has ended (a `run --once`
        killed a moment ago), so that it need not be waited out; None otherwise. Were the
        guess wrong, the fence would still keep the holder from writing as the scheduler."""
        lease = lease_store.current(connection=connection)
        where = _HOLDER_PROCESS.search(lease.holder) if lease is not None and lease.live else None
        if lease is None or where is None or where["host"] != socket.gethostname():
            return None
        try:
            os.kill(int(where["pid"]), 0)
        except ProcessLookupError:
            return lease.holder
        except PermissionError:
            pass  # alive, someone else's
        return None

    def _keep_renewed(self, stop: threading.Event) -> None:
        while not stop.wait(RENEW_SECONDS):
            with self._mutex:
                if stop.is_set() or not self._renew():
                    return

    def _renew(self) -> bool:
        """One renewal, under the mutex, while this process holds the lease."""
        assert self.epoch is not None
        try:
            with self.engine.begin() as connection:
                held = lease_store.renew(self.holder, self.epoch, self.lease_seconds, connection=connection)
        except sa.exc.DBAPIError as error:
            unrenewed = time.monotonic() - self._renewed_at
            if unrenewed < self.lease_seconds:
                return True
            log.warning("lost the scheduler lock (its lease went unrenewed for %.0f s: %s)", unrenewed, one_line(error))
            self._lose()
            return False
        if not held:
            log.warning("lost the scheduler lock (another process took its lease over)")
            self._lose()
            return False
        self._renewed_at = time.monotonic()
        return True

    def _lose(self) -> None:
        self.is_leader, self.epoch = False, None
        self._stop_renewing.set()

    def _holder(self) -> str:
        if self.single_process:
            return f"another forecaster process ({self._lock_path().read_text().strip() or 'unknown'})"
        with self.engine.connect() as connection:
            lease = lease_store.current(connection=connection)
        if lease is None or not lease.live:
            return "another process (it has just let go; try again)"
        holder, renewed = _without_token(lease.holder), lease.renewed_seconds_ago
        return f"another process ({holder}, its lease renewed {renewed:.0f} s ago)"

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


def _without_token(holder: str) -> str:
    """A lease holder's name as a person reads it: role, host and pid."""
    return holder.rsplit(" #", 1)[0]
