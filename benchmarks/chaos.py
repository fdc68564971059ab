"""The daemon's catch-up killed at random moments, many times over: the long version of tests/e2e/test_chaos.py.

    .venv/bin/python benchmarks/chaos.py                      # 3 seeds x 40 kills, SQLite and PostgreSQL
    .venv/bin/python benchmarks/chaos.py --seeds 1 --kills 20 --backend sqlite
    .venv/bin/python benchmarks/chaos.py --max-delay 0.3     # kills sooner: more of them land mid-walk

For every seed and backend: a database with 40 tickers backfilled for six sessions, copied
twice; one copy caught up by `forecaster run --once` (11 sessions, 15 days for crypto, 48
tickers on New York, Tokyo, London and crypto calendars, of which 8 new, claims of 5) without interruption, the other started again and again and killed each time
(SIGKILL or SIGTERM, at random) at a random moment, then run to the end. Prints, per trial,
the kills, how many distinct points they landed at, whether the product tables are identical
and whether the runs add up; exits 1 if any trial differs. PostgreSQL: the server of
FORECASTER_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support, run from anywhere

from tests.support import chaos  # noqa: E402

ADMIN_URL = os.environ.get("FORECASTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def postgres_copies() -> Iterator[tuple[str, str, str]]:
    """(base, reference, crashed) database URLs; the two copies are made from base by the caller."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = [f"fc_chaos_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    urls = tuple(sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False) for name in names)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{names[0]}"'))
        yield urls  # type: ignore[misc]
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def copy_postgres(base: str, target: str) -> None:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            sa.text(f'CREATE DATABASE "{sa.make_url(target).database}" TEMPLATE "{sa.make_url(base).database}"')
        )
    admin.dispose()


def trial(
    backend: str, seed: int, kills: int, max_delay: float, directory: Path
) -> tuple[chaos.ChaosRun, list[str], list[str], float]:
    started = time.monotonic()
    if backend == "sqlite":
        base_file = directory / "base.db"
        chaos.prepare(f"sqlite:///{base_file}")
        for name in ("reference", "crashed"):
            chaos.copy_sqlite(base_file, directory / f"{name}.db")
        reference, crashed = (f"sqlite:///{directory / name}.db" for name in ("reference", "crashed"))
        return _walk(reference, crashed, seed, kills, max_delay, directory, started)
    with postgres_copies() as (base, reference, crashed):
        chaos.prepare(base)
        copy_postgres(base, reference)
        copy_postgres(base, crashed)
        return _walk(reference, crashed, seed, kills, max_delay, directory, started)


def _walk(
    reference: str, crashed: str, seed: int, kills: int, max_delay: float, directory: Path, started: float
) -> tuple[chaos.ChaosRun, list[str], list[str], float]:
    chaos.run_to_the_end(reference)
    run = chaos.kill_again_and_again(crashed, directory, kills=kills, seed=seed, max_delay=max_delay)
    chaos.run_to_the_end(crashed)
    return run, chaos.same_tables(reference, crashed), chaos.bookkeeping_problems(crashed), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40, help="kills per trial (default 40)")
    parser.add_argument("--seeds", type=int, default=3, help="trials per backend, seeds 1..N (default 3)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--max-delay",
        type=float,
        default=1.5,
        help="most seconds between a start's first run and its kill (default 1.5); 1 start in 5 is killed "
        "0.5-3 s after the start instead",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print where every kill landed")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)

    print(
        "| backend | seed | kills | SIGKILL | SIGTERM | landed at distinct points | finished before the kill | tables identical | runs add up | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    failed = 0
    for backend in backends:
        for seed in range(1, args.seeds + 1):
            with tempfile.TemporaryDirectory(prefix="fc_chaos_") as directory:
                run, differences, problems, seconds = trial(backend, seed, args.kills, args.max_delay, Path(directory))
            signals = [kill.signal for kill in run.kills]
            print(
                f"| {backend} | {seed} | {len(run.kills)} | {signals.count('SIGKILL')} | {signals.count('SIGTERM')} "
                f"| {len({kill.forecasts for kill in run.kills})} | {run.completed_early} "
                f"| {'yes' if not differences else 'NO: ' + '; '.join(differences)} "
                f"| {'yes' if not problems else 'NO: ' + '; '.join(problems)} | {seconds:.0f} |",
                flush=True,
            )
            if args.verbose:
                print(run.landings(), flush=True)
            failed += bool(differences or problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
