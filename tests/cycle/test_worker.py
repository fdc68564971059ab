"""A worker writes a claim's results only while it still holds the claim: a late worker writes nothing.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from forecaster.calendar import NYSE as NYSE_NAME
from forecaster.calendar import trading_calendar
from forecaster.context import CycleContext
from forecaster.cycle import run_cycle
from forecaster.model.presets import PRESETS
from forecaster.prices.ingest import ensure_prices
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.store import tasks
from forecaster.store.runs import start_run
from forecaster.store.schema import predictions
from forecaster.worker import process_claim
from tests.support.tables import snapshot

PRESET = PRESETS["default"]
MON, TUE = date(2024, 3, 4), date(2024, 3, 5)
NYSE = trading_calendar(NYSE_NAME)
NOW = datetime(2024, 3, 5, 23, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
TICKERS = ["AAA", "BBB"]


def _tuesdays_tasks(engine: sa.Engine) -> int:
    """Monday forecast and stored; Tuesday's prices stored and its tasks enqueued under a new run."""
    source = SyntheticSource(seed=2)
    context = CycleContext(engine=engine, source=source, tickers=TICKERS, preset=PRESET)
    run_cycle(context, MON)
    ensure_prices(
        engine, source, dict.fromkeys(TICKERS, TUE), TUE, calendar=NYSE, rules=context.price_rules, clock=lambda: NOW
    )
    with engine.begin() as connection:
        run_id = start_run("daily", connection=connection, as_of=TUE, preset=PRESET.name, host=None, started_at=NOW)
        tasks.enqueue(PRESET.name, TUE, run_id, TICKERS, connection=connection)
    return run_id


def _worker(engine: sa.Engine, now: datetime) -> CycleContext:
    """A worker's context whose clock stands at `now`."""
    return CycleContext(
        engine=engine, source=SyntheticSource(seed=2), tickers=TICKERS, preset=PRESET, clock=lambda: now, lease=LEASE
    )


def _claim(engine: sa.Engine, worker: str, now: datetime) -> tasks.Claim:
    with engine.begin() as connection:
        return tasks.claim(PRESET.name, connection=connection, worker=worker, now=now, lease=LEASE, limit=10)


def test_a_worker_whose_lease_was_taken_over_writes_nothing(migrated_engine):
    run_id = _tuesdays_tasks(migrated_engine)
    slow = _claim(migrated_engine, "slow", NOW)
    taken_over = _claim(migrated_engine, "fast", NOW + LEASE + timedelta(seconds=1))
    process_claim(_worker(migrated_engine, NOW), taken_over, lambda: False)
    written = snapshot(migrated_engine)

    process_claim(_worker(migrated_engine, NOW + timedelta(hours=1)), slow, lambda: False)

    assert snapshot(migrated_engine) == written
    with migrated_engine.connect() as connection:
        p = predictions.c
        runs = connection.execute(sa.select(p.run_id, sa.func.count()).where(p.as_of == TUE).group_by(p.run_id)).all()
    assert runs == [(run_id, 2)]
