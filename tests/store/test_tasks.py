"""The task queue of a cycle: leases, the fence that lets only a lease's holder complete a task, and give-up.

On SQLite and PostgreSQL. (Several workers racing for real: tests/daemon/test_workers.py.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from forecaster.context import CycleContext
from forecaster.model.presets import PRESETS
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.store import tasks
from forecaster.store.runs import run_failures_of, start_run
from forecaster.store.schema import cycle_tasks
from forecaster.worker import work

PRESET = "default"
TUESDAY = date(2024, 3, 5)
NOW = datetime(2024, 3, 5, 23, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
def run_id(migrated_engine) -> int:
    with migrated_engine.begin() as connection:
        run = start_run("daily", connection=connection, as_of=TUESDAY, preset=PRESET, host=None, started_at=NOW)
        tasks.enqueue(PRESET, TUESDAY, run, ["AAA", "BBB", "CCC"], connection=connection)
    return run


def _claim(engine: sa.Engine, worker: str = "w1", now: datetime = NOW, limit: int = 2) -> tasks.Claim | None:
    with engine.begin() as connection:
        return tasks.claim(PRESET, connection=connection, worker=worker, now=now, lease=LEASE, limit=limit)


def _statuses(engine: sa.Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(cycle_tasks.c.ticker, cycle_tasks.c.status, cycle_tasks.c.attempts)).all()
    return {ticker: (status, attempts) for ticker, status, attempts in rows}


def test_a_claim_leases_the_first_pending_tickers_and_another_worker_gets_the_rest(migrated_engine, run_id):
    first, second = _claim(migrated_engine, "w1"), _claim(migrated_engine, "w2")

    assert (first.tickers, second.tickers) == (["AAA", "BBB"], ["CCC"])
    assert first.lease_id != second.lease_id
    assert _claim(migrated_engine, "w3") is None


def test_only_the_holder_of_the_lease_completes_a_task_and_learns_its_run(migrated_engine, run_id):
    claim = _claim(migrated_engine)
    stranger = tasks.Claim(PRESET, TUESDAY, lease_id="not-the-lease", tickers=claim.tickers)

    with migrated_engine.begin() as connection:
        refused = tasks.complete(stranger, ["AAA"], "done", connection=connection)
        completed = tasks.complete(claim, ["AAA", "CCC"], "done", connection=connection)  # CCC is not in the claim
        again = tasks.complete(claim, ["AAA"], "done", connection=connection)

    assert (refused, completed, again) == ({}, {"AAA": run_id}, {})


def test_an_expired_lease_is_claimed_by_another_worker_and_the_first_can_no_longer_complete(migrated_engine, run_id):
    first = _claim(migrated_engine, "w1", limit=3)
    later = _claim(migrated_engine, "w2", now=NOW + LEASE + timedelta(seconds=1), limit=3)

    with migrated_engine.begin() as connection:
        late = tasks.complete(first, first.tickers, "done", connection=connection)
        on_time = tasks.complete(later, later.tickers, "done", connection=connection)

    assert late == {} and set(on_time) == {"AAA", "BBB", "CCC"}


def test_a_renewed_lease_is_not_taken_over(migrated_engine, run_id):
    first = _claim(migrated_engine, "w1", limit=3)
    with migrated_engine.begin() as connection:
        tasks.extend(first, connection=connection, until=NOW + 2 * LEASE)

    assert _claim(migrated_engine, "w2", now=NOW + LEASE + timedelta(seconds=1)) is None


def test_re_enqueued_tasks_belong_to_the_new_run_and_old_leases_no_longer_complete_them(migrated_engine, run_id):
    first = _claim(migrated_engine, limit=3)
    with migrated_engine.begin() as connection:
        newer = start_run("daily", connection=connection, as_of=TUESDAY, preset=PRESET, host=None, started_at=NOW)
        tasks.enqueue(PRESET, TUESDAY, newer, ["AAA"], connection=connection)
        late = tasks.complete(first, ["AAA"], "done", connection=connection)
    second = _claim(migrated_engine, limit=3)
    with migrated_engine.begin() as connection:
        on_time = tasks.complete(second, ["AAA"], "done", connection=connection)

    assert (late, on_time) == ({}, {"AAA": newer})


def test_a_task_handed_back_on_a_stop_does_not_count_as_an_attempt(migrated_engine, run_id):
    claim = _claim(migrated_engine, limit=3)
    with migrated_engine.begin() as connection:
        tasks.release(claim, ["BBB", "CCC"], connection=connection)

    assert _statuses(migrated_engine) == {"AAA": ("leased", 1), "BBB": ("pending", 0), "CCC": ("pending", 0)}


def _expire_three_leases(engine: sa.Engine, limit: int = 1) -> datetime:
    """Three workers claim the first task and die holding it; returns the time all three leases have expired."""
    now = NOW
    for attempt in range(tasks.MAX_ATTEMPTS):
        assert _claim(engine, f"w{attempt}", now=now, limit=limit).tickers[0] == "AAA"
        now += LEASE + timedelta(seconds=1)
    return now


def test_a_task_whose_workers_died_three_times_is_failed_not_handed_out_again(migrated_engine, run_id):
    now = _expire_three_leases(migrated_engine)

    with migrated_engine.begin() as connection:
        abandoned = tasks.fail_abandoned(PRESET, connection=connection, now=now)
    next_claim = _claim(migrated_engine, "w9", now=now, limit=1)

    assert [(a.ticker, a.run_id, a.worker, a.attempts) for a in abandoned] == [("AAA", run_id, "w2", 3)]
    assert _statuses(migrated_engine)["AAA"] == ("failed", 3)
    assert next_claim.tickers == ["BBB"]


def test_a_worker_records_why_an_abandoned_task_failed_in_its_run(migrated_engine):
    with migrated_engine.begin() as connection:
        run = start_run("daily", connection=connection, as_of=TUESDAY, preset=PRESET, host=None, started_at=NOW)
        tasks.enqueue(PRESET, TUESDAY, run, ["AAA"], connection=connection)
    now = _expire_three_leases(migrated_engine)

    context = CycleContext(
        engine=migrated_engine, source=SyntheticSource(), tickers=["AAA"], preset=PRESETS[PRESET], clock=lambda: now
    )

    claims = work(context)

    with migrated_engine.connect() as connection:
        failures = run_failures_of(run, connection=connection)
    assert claims == 0
    assert [(f.ticker, f.stage, f.reason) for f in failures] == [
        ("AAA", "train", "its worker stopped 3 times while training it (last: w2)")
    ]
