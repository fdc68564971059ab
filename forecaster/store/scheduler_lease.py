"""The scheduler's lease on PostgreSQL: taken, renewed, given up and checked, each in one
transaction, so that it works through a transaction pooler (PgBouncer) where a session
advisory lock would not.

Time is the database's (`now()`), so the hosts' clocks do not matter. A lease is taken when it
is free (never taken, given up, or expired unrenewed), already the taker's, or held by a
process the taker knows to be dead; each taking adds one to its epoch. `fence` is the check
every write only the scheduler may make runs first, in its own transaction: it keeps the row
share-locked until that transaction ends, so a takeover waits for the write to commit, and a
write after a takeover finds another epoch and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

#: The lease of the role that starts cycles and runs.
SCHEDULER = "scheduler"

_TAKE = sa.text(
    """
    INSERT INTO scheduler_lease AS l (name, holder, epoch, acquired_at, renewed_at, expires_at)
    VALUES (:name, :holder, 1, now(), now(), now() + make_interval(secs => :seconds))
    ON CONFLICT (name) DO UPDATE
    SET holder = EXCLUDED.holder, epoch = l.epoch + 1, acquired_at = now(), renewed_at = now(),
        expires_at = EXCLUDED.expires_at
    WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder OR l.holder = :replacing
    RETURNING epoch
    """
)
_RENEW = sa.text(
    """
    UPDATE scheduler_lease SET renewed_at = now(), expires_at = now() + make_interval(secs => :seconds)
    WHERE name = :name AND holder = :holder AND epoch = :epoch
    """
)
_FENCE = sa.text("SELECT 1 FROM scheduler_lease WHERE name = :name AND holder = :holder AND epoch = :epoch FOR SHARE")
_GIVE_UP = sa.text(
    "UPDATE scheduler_lease SET expires_at = now() WHERE name = :name AND holder = :holder AND epoch = :epoch"
)
_READ = sa.text(
    """
    SELECT holder, epoch, expires_at > now() AS live, extract(epoch FROM now() - renewed_at) AS renewed_seconds_ago
    FROM scheduler_lease WHERE name = :name
    """
)


@dataclass(frozen=True)
class Lease:
    holder: str
    epoch: int
    live: bool  # not expired and not given up
    renewed_seconds_ago: float


def take(
    holder: str, seconds: float, *, connection: sa.Connection, replacing: str | None = None, name: str = SCHEDULER
) -> int | None:
    """The epoch of the lease now held by `holder` for `seconds`, or None while another holds it;
    a lease held by `replacing` (a holder known to be dead) is taken even before it expires."""
    parameters = {"name": name, "holder": holder, "seconds": seconds, "replacing": replacing}
    epoch = connection.execute(_TAKE, parameters).scalar()
    return None if epoch is None else int(epoch)


def renew(holder: str, epoch: int, seconds: float, *, connection: sa.Connection, name: str = SCHEDULER) -> bool:
    """Extends the lease by `seconds` from now; False when `holder` no longer holds it at `epoch`
    (an expired lease nobody took meanwhile is still its own)."""
    result = connection.execute(_RENEW, {"name": name, "holder": holder, "epoch": epoch, "seconds": seconds})
    return result.rowcount == 1


def fence(holder: str, epoch: int, *, connection: sa.Connection, name: str = SCHEDULER) -> bool:
    """True, and the lease row share-locked until the transaction ends, while `holder` holds the
    lease at `epoch`; False once another process has taken it."""
    return connection.execute(_FENCE, {"name": name, "holder": holder, "epoch": epoch}).first() is not None


def give_up(holder: str, epoch: int, *, connection: sa.Connection, name: str = SCHEDULER) -> None:
    """Ends the lease now, if still held, so another process can take it without waiting."""
    connection.execute(_GIVE_UP, {"name": name, "holder": holder, "epoch": epoch})


def current(*, connection: sa.Connection, name: str = SCHEDULER) -> Lease | None:
    row = connection.execute(_READ, {"name": name}).first()
    if row is None:
        return None
    return Lease(row.holder, int(row.epoch), bool(row.live), float(row.renewed_seconds_ago))
