"""Work items of a cycle: one per ticker, claimed by any worker under an expiring lease.

On PostgreSQL several `forecaster run` processes share a cycle this way; the claim is
SELECT ... FOR UPDATE SKIP LOCKED, so two workers never take the same ticker. SQLite
drops the SKIP LOCKED clause (it allows one writer anyway) and runs one worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from forecaster.store.bulk import upsert
from forecaster.store.schema import cycle_tasks


@dataclass(frozen=True)
class Claim:
    """Tickers of one cycle (preset, as_of) leased to one worker."""

    preset: str
    as_of: date
    run_id: int
    tickers: list[str]


def enqueue(preset: str, as_of: date, run_id: int, tickers: Sequence[str], *, connection: sa.Connection) -> None:
    """Makes each ticker a pending task of `run_id`, resetting any earlier attempt of the same cycle."""
    if not tickers:
        return
    connection.execute(
        upsert(connection, cycle_tasks, update=["run_id", "status", "worker", "lease_expires_at"]),
        [
            {"preset": preset, "as_of": as_of, "ticker": t, "run_id": run_id, "status": "pending",
             "worker": None, "lease_expires_at": None, "attempts": 0}
            for t in tickers
        ],
    )


def _claimable(preset: str, now: datetime) -> sa.ColumnElement[bool]:
    expired = sa.and_(cycle_tasks.c.status == "leased", cycle_tasks.c.lease_expires_at < now)
    return sa.and_(cycle_tasks.c.preset == preset, sa.or_(cycle_tasks.c.status == "pending", expired))


def claim(
    preset: str,
    *,
    connection: sa.Connection,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    as_of: date | None = None,
) -> Claim | None:
    """Leases up to `limit` claimable tasks of the earliest claimable cycle (or of `as_of`).

    Earliest first, because a ticker's state for one session is the warm start of the next.
    """
    cycles = sa.select(sa.func.min(cycle_tasks.c.as_of)).where(_claimable(preset, now))
    if as_of is not None:
        cycles = cycles.where(cycle_tasks.c.as_of == as_of)
    first = connection.execute(cycles).scalar_one()
    if first is None:
        return None
    rows = connection.execute(
        sa.select(cycle_tasks.c.ticker, cycle_tasks.c.run_id)
        .where(_claimable(preset, now), cycle_tasks.c.as_of == first)
        .order_by(cycle_tasks.c.ticker)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return None
    tickers = [row.ticker for row in rows]
    connection.execute(
        cycle_tasks.update()
        .where(cycle_tasks.c.preset == preset, cycle_tasks.c.as_of == first, cycle_tasks.c.ticker.in_(tickers))
        .values(status="leased", worker=worker, lease_expires_at=now + lease, attempts=cycle_tasks.c.attempts + 1)
    )
    return Claim(preset=preset, as_of=first, run_id=rows[0].run_id, tickers=tickers)


def complete(preset: str, as_of: date, tickers: Sequence[str], status: str, *, connection: sa.Connection) -> None:
    """Marks tasks 'done' or 'failed'."""
    if tickers:
        connection.execute(
            cycle_tasks.update()
            .where(cycle_tasks.c.preset == preset, cycle_tasks.c.as_of == as_of, cycle_tasks.c.ticker.in_(list(tickers)))
            .values(status=status, lease_expires_at=None)
        )


def release(preset: str, as_of: date, tickers: Sequence[str], *, connection: sa.Connection) -> None:
    """Hands leased tasks back (pending), for a worker that stops before doing them."""
    if tickers:
        connection.execute(
            cycle_tasks.update()
            .where(cycle_tasks.c.preset == preset, cycle_tasks.c.as_of == as_of, cycle_tasks.c.ticker.in_(list(tickers)))
            .values(status="pending", worker=None, lease_expires_at=None)
        )


def open_tasks(preset: str, as_of: date, *, connection: sa.Connection) -> int:
    """Tasks of the cycle still pending or leased (an expired lease counts: it will be reclaimed)."""
    return connection.execute(
        sa.select(sa.func.count()).where(
            cycle_tasks.c.preset == preset, cycle_tasks.c.as_of == as_of, cycle_tasks.c.status.in_(["pending", "leased"])
        )
    ).scalar_one()


def clear(preset: str, as_of: date, *, connection: sa.Connection) -> None:
    """Drops a finished cycle's tasks; its run row and run_failures keep the history."""
    connection.execute(cycle_tasks.delete().where(cycle_tasks.c.preset == preset, cycle_tasks.c.as_of == as_of))
