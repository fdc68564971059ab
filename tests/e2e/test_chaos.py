"""The daemon's catch-up killed at random moments, again and again, ends exactly like an uninterrupted one.

`forecaster run --once` catches up 11 sessions (15 days for crypto) for 48 tickers on four
markets, New York, Tokyo, London and crypto (8 of them new to the watch list), with claims of 5 tickers, so every session is split over several claims. It is started
20 times, each start killed with SIGKILL or SIGTERM at a random moment (seeded: the seed and
where each kill landed are printed; FORECASTER_TEST_CHAOS_SEED replays one), then run to the end.
Its tables must then equal those of an uninterrupted catch-up of a copy of the same database,
every run must add up, and nothing may be left running or queued. On SQLite and PostgreSQL at
the same time (two threads: the wait is mostly process starts). benchmarks/chaos.py runs the
same with more kills and seeds.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import chaos

SEED = int(os.environ.get("FORECASTER_TEST_CHAOS_SEED", "20261129"))
KILLS = 20


def _reference_and_chaos(reference: str, crashed: str, log_dir: Path, seed: int) -> chaos.ChaosRun:
    log_dir.mkdir()
    chaos.run_to_the_end(reference)
    run = chaos.kill_again_and_again(crashed, log_dir, kills=KILLS, seed=seed)
    chaos.run_to_the_end(crashed)
    return run


def test_the_catch_up_killed_at_twenty_random_moments_ends_with_the_tables_of_an_uninterrupted_one(
    tmp_path, new_postgres_url
):
    chaos.prepare(f"sqlite:///{tmp_path / 'base.db'}")
    postgres_base = new_postgres_url()
    chaos.prepare(postgres_base)
    for name in ("reference", "crashed"):
        chaos.copy_sqlite(tmp_path / "base.db", tmp_path / f"{name}.db")
    pairs = {
        "sqlite": (f"sqlite:///{tmp_path / 'reference.db'}", f"sqlite:///{tmp_path / 'crashed.db'}"),
        "postgresql": (new_postgres_url(copy_of=postgres_base), new_postgres_url(copy_of=postgres_base)),
    }

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            backend: pool.submit(_reference_and_chaos, reference, crashed, tmp_path / backend, SEED + k)
            for k, (backend, (reference, crashed)) in enumerate(pairs.items())
        }
        runs = {backend: future.result() for backend, future in futures.items()}

    for backend, (reference, crashed) in pairs.items():
        where = f"{backend}, seed {runs[backend].seed}:\n{runs[backend].landings()}"
        print(where)  # noqa: T201 (pytest -s shows where each kill landed)
        assert chaos.same_tables(reference, crashed) == [], where
        assert chaos.bookkeeping_problems(crashed) == [], where
        assert chaos.bookkeeping_problems(reference) == [], backend
        assert chaos.unforecast_sessions(reference) == {}, backend
        # The kills landed at many different points of the walk, not all before or after it.
        assert len({kill.forecasts for kill in runs[backend].kills}) >= 5, where
