"""Workers sharing one warm daily cycle on PostgreSQL: N processes, claim sizes, contention.

    python benchmarks/workers_scale.py [--tickers 10000] [--workers 1,2,4] [--claim-sizes 500]

A fresh PostgreSQL database gets a cold `forecaster run --once` of the watch list (prices and
first fits), untimed. Then, per (workers, claim size), one warm cycle of the next session: a
`forecaster run --once` process (the scheduler: it enqueues the tickers as tasks and works on
them too) and N-1 helper processes that run the daemon's worker loop (forecaster.worker.work)
beside it, each claiming up to the claim size with SELECT ... FOR UPDATE SKIP LOCKED. Timed
from the scheduler's spawn to its exit. While it runs, pg_stat_activity is sampled every
0.1 s for backends waiting on a lock; the helpers time each claim that got tasks (not the
polls of a helper waiting for the cycle's tasks) and count the tickers they trained. Afterwards
the session must have exactly one forecast per ticker.

On 2 cores, N processes share the same two cores: the compiled trainer already uses both, so
more workers can only overlap one process's database waits with another's training.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from cycle_scale import AS_OF, NYSE_CALENDAR, PRESET, run_once, synthetic_tickers
from scratch_postgres import scratch_database


def helper(claim_size: int, report: str) -> None:
    """A worker process: the daemon's worker loop until SIGTERM, each claim timed."""
    from forecaster import worker
    from forecaster.app import opened_context
    from forecaster.config import Settings
    from forecaster.store import tasks

    claims: list[tuple[float, int]] = []  # (seconds, tickers claimed) of each claim that got tasks
    original = tasks.claim

    def timed_claim(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        claim = original(*args, **kwargs)
        if claim is not None:  # not the polls of an idle worker waiting for the cycle's tasks
            claims.append((time.perf_counter() - started, len(claim.tickers)))
        return claim

    worker.task_store.claim = timed_claim
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings(claim_size=claim_size)
    with opened_context(settings, role="benchmark worker", stop=stop, exclusive=False) as (context, _):
        print("ready", flush=True)
        while not stop.is_set():
            try:
                if worker.work(context) == 0:
                    stop.wait(0.1)
            except Exception:  # noqa: BLE001 (a stop mid-claim: the lease lapses, another takes it)
                break
    Path(report).write_text(json.dumps(claims))


def _lock_waits(url: str, done: threading.Event, samples: list[int]) -> None:
    engine = sa.create_engine(url)
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while not done.is_set():
        with engine.connect() as connection:
            samples.append(connection.execute(query).scalar_one())
        done.wait(0.1)
    engine.dispose()


def measure(url: str, tickers_file: Path, as_of: date, workers: int, claim_size: int, directory: Path) -> dict:
    env = os.environ | {
        "FORECASTER_DATABASE_URL": url,
        "FORECASTER_SOURCE": "synthetic:11",
        "FORECASTER_TICKERS_FILE": str(tickers_file),
        "FORECASTER_CLAIM_SIZE": str(claim_size),
    }
    env.pop("FORECASTER_TICKERS", None)
    reports = [directory / f"claims{k}.json" for k in range(workers - 1)]
    helpers = [
        subprocess.Popen(
            [sys.executable, __file__, "--helper", str(claim_size), str(report)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for report in reports
    ]
    for process in helpers:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    samples: list[int] = []
    done = threading.Event()
    sampler = threading.Thread(target=_lock_waits, args=(url, done, samples))
    sampler.start()
    try:
        result = run_once(url, tickers_file, as_of, claim_size=str(claim_size))
    finally:
        done.set()
        sampler.join()
        for process in helpers:
            process.send_signal(signal.SIGTERM)
        for process in helpers:
            process.wait(timeout=120)
    claims = [tuple(claim) for report in reports if report.exists() for claim in json.loads(report.read_text())]
    seconds = [s for s, _ in claims]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        forecasts, distinct = connection.execute(
            sa.text("SELECT count(*), count(DISTINCT ticker) FROM predictions WHERE as_of = :d"), {"d": as_of}
        ).one()
    engine.dispose()
    return {
        "seconds": result["seconds"],
        "forecasts": forecasts,
        "distinct": distinct,
        "helper_claims": len(claims),
        "helper_tickers": sum(n for _, n in claims),
        "claim_ms_median": statistics.median(seconds) * 1000 if seconds else float("nan"),
        "claim_ms_max": max(seconds) * 1000 if seconds else float("nan"),
        "lock_wait_share": sum(1 for s in samples if s) / max(len(samples), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--claim-sizes", default="500")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--helper", nargs=2, metavar=("CLAIM_SIZE", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.helper:
        helper(int(args.helper[0]), args.helper[1])
        return
    counts = [int(n) for n in args.workers.split(",")]
    sizes = [int(n) for n in args.claim_sizes.split(",")]
    print(
        f"{args.tickers} tickers, warm cycles of the {PRESET.name} preset on PostgreSQL; {os.cpu_count()} cores; "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(
        f"{'workers':>7} {'claim':>6} {'wall s':>7} {'tickers/s':>10} {'forecasts':>10} {'helper claims':>14} "
        f"{'helper tickers':>15} {'claim ms median':>16} {'claim ms max':>13} {'lock waits':>11}"
    )
    with tempfile.TemporaryDirectory() as directory, scratch_database(args.postgres_url, "fc_workers") as url:
        tickers_file = Path(directory) / "watchlist.txt"
        tickers_file.write_text("\n".join(synthetic_tickers(args.tickers)) + "\n")
        run_once(url, tickers_file, AS_OF)  # the cold cycle: prices and first fits, untimed
        as_of = AS_OF
        for size in sizes:
            for workers in counts:
                as_of = NYSE_CALENDAR.next_session(as_of)
                row = measure(url, tickers_file, as_of, workers, size, Path(directory))
                assert row["forecasts"] == row["distinct"] == args.tickers, row
                print(
                    f"{workers:>7} {size:>6} {row['seconds']:>7.1f} {args.tickers / row['seconds']:>10.0f} "
                    f"{row['forecasts']:>10} {row['helper_claims']:>14} {row['helper_tickers']:>15} "
                    f"{row['claim_ms_median']:>16.1f} "
                    f"{row['claim_ms_max']:>13.1f} {row['lock_wait_share']:>10.0%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
