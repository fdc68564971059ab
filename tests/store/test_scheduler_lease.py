"""The scheduler lease on PostgreSQL: taken when free, renewed by its holder, fenced by epoch.

PostgreSQL only: on SQLite the scheduler lock is a file lock (one process at all) and the lease
row is never read. Time is the database's; a lease made to expire at once stands in for a
holder that stopped renewing.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from forecaster.store import scheduler_lease as lease


@pytest.fixture
def engine(migrated_postgres):
    return migrated_postgres


def _take(engine, holder, seconds=60.0):
    with engine.begin() as connection:
        return lease.take(holder, seconds, connection=connection)


def _renew(engine, holder, epoch):
    with engine.begin() as connection:
        return lease.renew(holder, epoch, 60.0, connection=connection)


def _fence(engine, holder, epoch):
    with engine.begin() as connection:
        return lease.fence(holder, epoch, connection=connection)


def _expire(engine, holder, epoch):
    """The holder stopped renewing long ago: its lease ran out."""
    with engine.begin() as connection:
        assert lease.renew(holder, epoch, -1.0, connection=connection)


def test_a_free_lease_is_taken_once_and_refused_to_everyone_else_while_it_is_renewed(engine):
    assert _take(engine, "a") == 1
    assert _take(engine, "b") is None
    assert _renew(engine, "a", 1) and _fence(engine, "a", 1)
    assert not _renew(engine, "b", 1) and not _fence(engine, "b", 1)
    assert not _renew(engine, "a", 2), "a renewal names the epoch it holds"
    with engine.connect() as connection:
        current = lease.current(connection=connection)
    assert current is not None and current.holder == "a" and current.epoch == 1 and current.live


def test_an_expired_lease_goes_to_the_next_taker_with_the_next_epoch_and_fences_the_old_holder(engine):
    assert _take(engine, "a") == 1
    _expire(engine, "a", 1)
    assert _take(engine, "b") == 2
    assert not _renew(engine, "a", 1), "the old holder cannot renew its way back"
    assert not _fence(engine, "a", 1), "nor write as the scheduler"
    assert _fence(engine, "b", 2)


def test_an_expired_lease_nobody_took_is_still_its_holders(engine):
    assert _take(engine, "a") == 1
    _expire(engine, "a", 1)
    assert _fence(engine, "a", 1) and _renew(engine, "a", 1)
    assert _take(engine, "b") is None


def test_a_live_lease_is_taken_from_a_holder_named_dead_and_only_from_that_one(engine):
    assert _take(engine, "a") == 1
    with engine.begin() as connection:
        assert lease.take("b", 60.0, connection=connection, replacing="c") is None
        assert lease.take("b", 60.0, connection=connection, replacing="a") == 2
    assert not _fence(engine, "a", 1)


def test_a_lease_given_up_is_taken_at_once(engine):
    assert _take(engine, "a") == 1
    with engine.begin() as connection:
        lease.give_up("a", 1, connection=connection)
    assert _take(engine, "b") == 2
    with engine.begin() as connection:
        lease.give_up("a", 1, connection=connection)  # a stale give-up changes nothing
    assert _fence(engine, "b", 2)


def test_a_takeover_waits_for_the_fenced_write_in_flight_and_then_fences_its_writer_out(engine):
    """The write that passed its fence commits before the lease can change hands; the next one fails."""
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE written (k int)"))
    assert _take(engine, "a") == 1
    _expire(engine, "a", 1)
    taken: list[int | None] = []
    with engine.begin() as writer:
        assert lease.fence("a", 1, connection=writer)
        taker = threading.Thread(target=lambda: taken.append(_take(engine, "b")))
        taker.start()
        deadline = time.monotonic() + 60
        waiting = sa.text(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%scheduler_lease%'"
        )
        while True:  # until the taker's backend waits on the fenced row's lock (one snapshot per transaction)
            with engine.connect() as watcher:
                if watcher.execute(waiting).first():
                    break
            assert time.monotonic() < deadline, "the takeover never waited on the fence"
            time.sleep(0.05)
        assert taken == [], "the takeover waits while the fenced transaction is open"
        writer.execute(sa.text("INSERT INTO written VALUES (1)"))
    taker.join(timeout=60)
    assert taken == [2]
    assert not _fence(engine, "a", 1)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM written")).scalar_one() == 1
