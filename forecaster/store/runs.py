"""Run records: one row per cycle, backfill step or fit, plus the tickers that failed in it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import sqlalchemy as sa

from forecaster.store.bulk import upsert
from forecaster.store.schema import run_failures, runs

RunKind = Literal["daily", "backfill", "fit"]
RunStatus = Literal["running", "ok", "partial", "failed", "interrupted"]
FailureStage = Literal["fetch", "validate", "train", "write"]


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
) -> int:
    """Records a run as 'running' and returns its id."""
    result = connection.execute(
        runs.insert().values(kind=kind, as_of=as_of, preset=preset, host=host, started_at=started_at, status="running")
    )
    return int(result.inserted_primary_key[0])


def finish_run(
    run_id: int,
    *,
    connection: sa.Connection,
    status: RunStatus,
    tickers_ok: int,
    tickers_failed: int,
    tickers_skipped: int,
    error: str | None,
    finished_at: datetime,
) -> None:
    """Records how a run ended. Raises LookupError for an unknown run id."""
    result = connection.execute(
        runs.update()
        .where(runs.c.id == run_id)
        .values(
            status=status, tickers_ok=tickers_ok, tickers_failed=tickers_failed, tickers_skipped=tickers_skipped,
            error=error, finished_at=finished_at,
        )
    )
    if result.rowcount != 1:
        raise LookupError(f"no run with id {run_id}")


def close_abandoned_runs(*, connection: sa.Connection, started_before: datetime, now: datetime) -> int:
    """Marks runs still 'running' from before `started_before` as interrupted: their process
    died (SIGKILL, power loss) without recording an end. Returns how many."""
    result = connection.execute(
        runs.update()
        .where(runs.c.status == "running", runs.c.started_at < started_before)
        .values(status="interrupted", finished_at=now, error="the process stopped without recording the end of this run")
    )
    return result.rowcount


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


def latest_run(*, connection: sa.Connection, kinds: Collection[RunKind] | None = None) -> RunRecord | None:
    """The most recently started run (of one of `kinds`, when given), or None."""
    statement = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(1)
    if kinds is not None:
        statement = statement.where(runs.c.kind.in_(list(kinds)))
    row = connection.execute(statement).first()
    return RunRecord(**row._mapping) if row is not None else None


def run_failures_of(run_id: int, *, connection: sa.Connection) -> list[RunFailure]:
    """The tickers that failed in a run, by ticker."""
    statement = sa.select(run_failures).where(run_failures.c.run_id == run_id).order_by(run_failures.c.ticker)
    return [RunFailure(**row._mapping) for row in connection.execute(statement)]
