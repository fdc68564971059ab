"""Run records: one row per cycle (a daily or a backfill session), plus the tickers that failed in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import sqlalchemy as sa

from forecaster.calendar import NYSE
from forecaster.errors import FailureStage
from forecaster.store import tasks
from forecaster.store.bulk import upsert
from forecaster.store.schema import predictions, run_failures, runs

RunKind = Literal["daily", "backfill"]
RunEnding = Literal["ok", "failed", "interrupted"]  # "ok" is stored as "partial" or "failed" when tickers failed


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    as_of: date | None
    preset: str | None
    started_at: datetime
    finished_at: datetime | None  # None while running, or when the process died mid-run
    status: str
    tickers_ok: int
    tickers_failed: int
    tickers_skipped: int
    error: str | None
    host: str | None
    calendar: str | None  # None for a run recorded before cycles had calendars
    tickers_waiting: int  # for a close not published yet (forecaster.walks); not failures


@dataclass(frozen=True)
class RunFailure:
    run_id: int
    ticker: str
    stage: str
    reason: str


def start_run(
    kind: RunKind,
    *,
    connection: sa.Connection,
    as_of: date | None,
    preset: str | None,
    host: str | None,
    started_at: datetime,
    calendar: str = NYSE,
) -> int:
    """Records a run as 'running' and returns its id."""
    result = connection.execute(
        runs.insert().values(
            kind=kind, as_of=as_of, preset=preset, host=host, started_at=started_at, status="running", calendar=calendar
        )
    )
    key = result.inserted_primary_key
    assert key is not None, "an INSERT of one row has its primary key"
    return int(key[0])


def finish_run(
    run_id: int,
    *,
    connection: sa.Connection,
    status: RunEnding,
    tickers_skipped: int,
    error: str | None,
    finished_at: datetime,
    tickers_waiting: int = 0,
) -> RunRecord | None:
    """Records how a run ended, unless it has ended already (then returns None); returns the record.

    The counts are read from what the run left, not passed in: `tickers_ok` is its forecasts,
    `tickers_failed` its failed tickers, so they add up whoever did the work (another worker, or
    a process that took over from a dead one). Its tasks are deleted in the same transaction,
    which also stops any worker still training one of them from writing into a finished run.
    A run that ends "ok" with failed tickers is "partial", or "failed" if it wrote nothing.
    Raises LookupError for an unknown run id.
    """
    current = connection.execute(
        sa.select(runs.c.status).where(runs.c.id == run_id).with_for_update()
    ).scalar_one_or_none()
    if current is None:
        raise LookupError(f"no run with id {run_id}")
    if current != "running":
        return None
    tasks.delete_for_run(run_id, connection=connection)
    written = connection.execute(sa.select(sa.func.count()).where(predictions.c.run_id == run_id)).scalar_one()
    failed = connection.execute(sa.select(sa.func.count()).where(run_failures.c.run_id == run_id)).scalar_one()
    if status == "ok" and failed:
        status = "failed" if written == 0 else "partial"  # type: ignore[assignment]
    connection.execute(
        runs.update()
        .where(runs.c.id == run_id)
        .values(
            status=status,
            tickers_ok=written,
            tickers_failed=failed,
            tickers_skipped=tickers_skipped,
            tickers_waiting=tickers_waiting,
            error=error,
            finished_at=finished_at,
        )
    )
    return get_run(run_id, connection=connection)


def close_abandoned_runs(*, connection: sa.Connection, now: datetime) -> list[RunRecord]:
    """Finishes as 'interrupted' every run still 'running'. Only the holder of the scheduler
    lock may call this: runs are started and finished only under that lock, so a run still
    running when a new holder looks belongs to a process that lost it (killed, or cut off from
    the database); such a process never writes into a finished run (see finish_run)."""
    running = connection.execute(
        sa.select(runs.c.id, runs.c.tickers_skipped, runs.c.tickers_waiting).where(runs.c.status == "running")
    ).all()
    closed = [
        finish_run(
            run_id,
            connection=connection,
            status="interrupted",
            tickers_skipped=skipped,
            tickers_waiting=waiting,
            finished_at=now,
            error="its process stopped before the end of the run (killed, or cut off from the database)",
        )
        for run_id, skipped, waiting in running
    ]
    return [record for record in closed if record is not None]


def record_failures(
    run_id: int, failures: Mapping[str, tuple[FailureStage, str]], *, connection: sa.Connection
) -> None:
    """Stores {ticker: (stage, reason)} for a run in one statement; a ticker recorded again is overwritten."""
    if not failures:
        return
    connection.execute(
        upsert(connection, run_failures, update=["stage", "reason"]),
        [{"run_id": run_id, "ticker": t, "stage": stage, "reason": reason} for t, (stage, reason) in failures.items()],
    )


def get_run(run_id: int, *, connection: sa.Connection) -> RunRecord:
    """The run with this id (LookupError if there is none)."""
    row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise LookupError(f"no run with id {run_id}")
    return RunRecord(**row._mapping)


def latest_run(*, connection: sa.Connection, calendar: str | None = None) -> RunRecord | None:
    """The most recently started run (of `calendar`'s sessions, when given), or None."""
    statement = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(1)
    if calendar is not None:
        statement = statement.where(runs.c.calendar == calendar)
    row = connection.execute(statement).first()
    return RunRecord(**row._mapping) if row is not None else None


def run_failures_of(run_id: int, *, connection: sa.Connection) -> list[RunFailure]:
    """The tickers that failed in a run, by ticker."""
    statement = sa.select(run_failures).where(run_failures.c.run_id == run_id).order_by(run_failures.c.ticker)
    return [RunFailure(**row._mapping) for row in connection.execute(statement)]
