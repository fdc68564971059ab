"""Work items of a cycle: one per ticker, claimed by any worker under an expiring lease.

On PostgreSQL several `forecaster run` processes share a cycle this way; the claim is
SELECT ... FOR UPDATE SKIP LOCKED, so two workers never take the same ticker. SQLite
drops the SKIP LOCKED clause (it allows one writer anyway) and runs one worker.

Every claim gets a fresh `lease_id`. A worker may only complete the tasks that still carry
its lease_id: once its lease has expired and another worker claimed a task, or the task's
run was finished and its tasks deleted, the late worker's results are dropped. That fence is
what makes each forecast written exactly once, whatever dies when.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from forecaster.calendar import NYSE
from forecaster.store.bulk import upsert_rows
from forecaster.store.membership import one_of
from forecaster.store.schema import cycle_tasks

#: A task whose lease expired this many times (its worker died or hung while holding it) is failed.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """Tickers of one cycle (preset, calendar, as_of) leased to one worker under `lease_id`."""

    preset: str
    as_of: date
    lease_id: str
    tickers: list[str]
    calendar: str = NYSE


@dataclass(frozen=True)
class AbandonedTask:
    """A task failed because the workers that leased it kept dying."""

    ticker: str
    run_id: int
    worker: str | None
    attempts: int


def enqueue(
    preset: str,
    as_of: date,
    run_id: int,
    tickers: Sequence[str],
    *,
    connection: sa.Connection,
    calendar: str = NYSE,
) -> None:
    """Makes each ticker a pending task of `run_id`. A task of the same cycle left by an earlier
    run is taken over and reset; its old lease no longer completes it."""
    if not tickers:
        return
    records = [
        {
            "preset": preset,
            "as_of": as_of,
            "ticker": t,
            "run_id": run_id,
            "status": "pending",
            "worker": None,
            "lease_id": None,
            "lease_expires_at": None,
            "attempts": 0,
            "calendar": calendar,
        }
        for t in tickers
    ]
    upsert_rows(
        connection,
        cycle_tasks,
        records,
        update=["run_id", "status", "worker", "lease_id", "lease_expires_at", "attempts", "calendar"],
    )


def _cycle(preset: str, calendar: str, as_of: date) -> sa.ColumnElement[bool]:
    return sa.and_(cycle_tasks.c.preset == preset, cycle_tasks.c.calendar == calendar, cycle_tasks.c.as_of == as_of)


def _held_by(claim: Claim) -> sa.ColumnElement[bool]:
    """The claim's tasks that still carry its lease: the fence every write through a claim passes."""
    return sa.and_(
        _cycle(claim.preset, claim.calendar, claim.as_of),
        cycle_tasks.c.lease_id == claim.lease_id,
        cycle_tasks.c.status == "leased",
    )


def _claimable(preset: str, now: datetime) -> sa.ColumnElement[bool]:
    expired = sa.and_(cycle_tasks.c.status == "leased", cycle_tasks.c.lease_expires_at < now)
    return sa.and_(cycle_tasks.c.preset == preset, sa.or_(cycle_tasks.c.status == "pending", expired))


def fail_abandoned(preset: str, *, connection: sa.Connection, now: datetime) -> list[AbandonedTask]:
    """Marks failed the tasks whose lease expired MAX_ATTEMPTS times, and returns them (their
    run records why): a ticker that kills its worker must not be handed out for ever."""
    abandoned = sa.and_(
        cycle_tasks.c.preset == preset,
        cycle_tasks.c.status == "leased",
        cycle_tasks.c.lease_expires_at < now,
        cycle_tasks.c.attempts >= MAX_ATTEMPTS,
    )
    rows = connection.execute(
        cycle_tasks.update()
        .where(abandoned)
        .values(status="failed", lease_id=None, lease_expires_at=None)
        .returning(cycle_tasks.c.ticker, cycle_tasks.c.run_id, cycle_tasks.c.worker, cycle_tasks.c.attempts)
    ).all()
    return [AbandonedTask(*row) for row in rows]


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
    """Leases up to `limit` claimable tasks of the earliest claimable cycle (or of `as_of`), the
    tasks of one calendar (the first by name when two calendars' cycles share the session).

    Earliest first, because a ticker's state for one session is the warm start of the next.
    """
    cycles = sa.select(cycle_tasks.c.as_of, cycle_tasks.c.calendar).where(_claimable(preset, now))
    if as_of is not None:
        cycles = cycles.where(cycle_tasks.c.as_of == as_of)
    row = connection.execute(cycles.order_by(cycle_tasks.c.as_of, cycle_tasks.c.calendar).limit(1)).first()
    if row is None:
        return None
    first, calendar = row
    tickers = list(
        connection.execute(
            sa.select(cycle_tasks.c.ticker)
            .where(_claimable(preset, now), _cycle(preset, calendar, first))
            .order_by(cycle_tasks.c.ticker)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not tickers:
        return None
    lease_id = uuid.uuid4().hex
    connection.execute(
        cycle_tasks.update()
        .where(_cycle(preset, calendar, first), one_of(cycle_tasks.c.ticker, tickers))
        .values(
            status="leased",
            worker=worker,
            lease_id=lease_id,
            lease_expires_at=now + lease,
            attempts=cycle_tasks.c.attempts + 1,
        )
    )
    return Claim(preset=preset, as_of=first, lease_id=lease_id, tickers=tickers, calendar=calendar)


def complete(claim: Claim, tickers: Sequence[str], status: str, *, connection: sa.Connection) -> dict[str, int]:
    """Marks 'done' or 'failed' those of `tickers` that still carry the claim's lease, and returns
    {ticker: run_id} for them: the caller writes results (or failures) for exactly these, in the
    same transaction, under the run the task belongs to now."""
    if not tickers:
        return {}
    rows = connection.execute(
        cycle_tasks.update()
        .where(_held_by(claim), one_of(cycle_tasks.c.ticker, tickers))
        .values(status=status, lease_id=None, lease_expires_at=None)
        .returning(cycle_tasks.c.ticker, cycle_tasks.c.run_id)
    ).all()
    return {ticker: run_id for ticker, run_id in rows}


def extend(claim: Claim, *, connection: sa.Connection, until: datetime) -> None:
    """Pushes the lease of the claim's unfinished tasks to `until` (a long claim stays its worker's)."""
    connection.execute(cycle_tasks.update().where(_held_by(claim)).values(lease_expires_at=until))


def release(claim: Claim, tickers: Sequence[str], *, connection: sa.Connection) -> None:
    """Hands leased tasks back (pending), for a worker that stops before doing them; a stop is
    not a crash, so the attempt is not counted."""
    if tickers:
        connection.execute(
            cycle_tasks.update()
            .where(_held_by(claim), one_of(cycle_tasks.c.ticker, tickers))
            .values(
                status="pending", worker=None, lease_id=None, lease_expires_at=None, attempts=cycle_tasks.c.attempts - 1
            )
        )


def open_tasks(preset: str, as_of: date, *, connection: sa.Connection, calendar: str = NYSE) -> int:
    """Tasks of the cycle still pending or leased (an expired lease counts: it will be reclaimed)."""
    return connection.execute(
        sa.select(sa.func.count()).where(
            _cycle(preset, calendar, as_of), cycle_tasks.c.status.in_(["pending", "leased"])
        )
    ).scalar_one()


def delete_for_run(run_id: int, *, connection: sa.Connection) -> None:
    """Drops every task of a run that is finishing: done, failed or still open. A worker still
    training one of them finds its lease gone and drops its results, so a finished run's
    counts stay true."""
    connection.execute(cycle_tasks.delete().where(cycle_tasks.c.run_id == run_id))
