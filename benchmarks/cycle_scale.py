"""Daily-cycle scale: 100, 1,000 and 5,000 tickers on SQLite and PostgreSQL, against the notebook's way.

    python benchmarks/cycle_scale.py [--sizes 100,1000,5000] [--postgres-url URL]
    python benchmarks/cycle_scale.py --cold [--sizes 5000]
    python benchmarks/cycle_scale.py --whole-process [--sizes 5000,25000,100000] [--backends postgresql]

For each size and backend, a fresh database gets 300 sessions of synthetic prices per
ticker and, for every ticker, a model state trained through the previous session (the
notebook's initial weights under the default preset's configuration, so the next
cycle warm-starts from it). Then the measured part, in a process of its own: one
`run_cycle` of the default preset (fetch nothing new, warm-start fit of 252-session
windows, forecast, write states, losses, forecasts, run row), with its wall time and
peak RSS. "Notebook's way" is the same daily fit done one ticker at a time by the
notebook's DataLoader + autograd loop, timed on a sample of tickers and scaled.

With --cold: the first cycle of new tickers instead, on an empty SQLite database: fetch and
store their history, the first fit (the preset's epochs_first_fit), forecasts, states and
every epoch's training loss, end to end in a process of its own, with its peak RSS.

With --whole-process: what a user times from outside. On a fresh database per size and backend,
`forecaster run --once --as-of D` on a watch list file of new tickers (the cold cycle: fetch 300
sessions, first fit), then `forecaster run --once --as-of` the next session (the warm cycle: one
new close, warm-start fit), each a real process of the installed command, timed from its spawn
to its exit: wall time, the time to its first log line (imports, settings, migrations) and its
peak RSS (the kernel's, from wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
import torch
from scratch_postgres import scratch_database

from forecaster.calendar import NYSE, trading_calendar
from forecaster.context import CycleContext
from forecaster.cycle import run_cycle
from forecaster.model.cell import NOTEBOOK_INITIAL_PARAMS
from forecaster.model.closes import ClosesMatrix
from forecaster.model.features import features
from forecaster.model.notebook_reference import train_like_notebook
from forecaster.model.presets import PRESETS
from forecaster.model.step import forecast_step
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.store.database import make_engine, upgrade
from forecaster.store.prices import record_requested, upsert_prices
from forecaster.store.runs import finish_run, start_run
from forecaster.store.schema import model_states

NYSE_CALENDAR = trading_calendar(NYSE)

AS_OF = date(2024, 6, 3)
PREVIOUS = NYSE_CALENDAR.sessions_back(AS_OF, 2)  # the session before AS_OF
PRESET = PRESETS["default"]


def synthetic_tickers(count: int) -> list[str]:
    return [f"S{k:05d}" for k in range(count)]


def prepare(url: str, count: int) -> None:
    """Prices through AS_OF and a warm-start state through the session before it, for every ticker."""
    engine = make_engine(url)
    upgrade(engine)
    tickers = synthetic_tickers(count)
    now = datetime.now(UTC)
    prices = SyntheticSource(seed=11).fetch(tickers, NYSE_CALENDAR.sessions_back(AS_OF, 300), AS_OF).prices
    state = {
        "params": NOTEBOOK_INITIAL_PARAMS,
        "optimizer_state": None,
        "config_hash": PRESET.config_hash,
        "preset": PRESET.name,
        "trained_through": PREVIOUS,
        "created_at": now,
    }
    with engine.begin() as connection:
        upsert_prices(prices, connection=connection, source="synthetic:11", fetched_at=now, new_tickers=tickers)
        record_requested(dict.fromkeys(tickers, NYSE_CALENDAR.sessions_back(AS_OF, 300)), connection=connection)
        run_id = start_run(
            "backfill", connection=connection, as_of=PREVIOUS, preset=PRESET.name, host="bench", started_at=now
        )
        finish_run(run_id, connection=connection, status="ok", tickers_skipped=0, error=None, finished_at=now)
        connection.execute(model_states.insert(), [state | {"ticker": t, "run_id": run_id} for t in tickers])
    engine.dispose()


def measure(url: str, count: int) -> dict[str, float]:
    """One warm daily cycle, as a running daemon does it (its compiled kernels loaded by an
    earlier cycle: they are loaded once per process); wall time and this process's peak RSS."""
    load_kernels()
    return _timed_cycle(make_engine(url), count)


def _timed_cycle(engine: sa.Engine, count: int) -> dict[str, float]:
    """One run_cycle of `count` tickers as of AS_OF: its wall time and this process's peak RSS."""
    context = CycleContext(
        engine=engine, source=SyntheticSource(seed=11), tickers=synthetic_tickers(count), preset=PRESET
    )
    started = time.perf_counter()
    outcome = run_cycle(context, AS_OF)
    seconds = time.perf_counter() - started
    assert outcome.status == "ok" and outcome.tickers_ok == count, outcome
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def load_kernels() -> None:
    """Loads the compiled trainer of the preset (what a daemon's first cycle does once)."""
    closes = SyntheticSource(seed=1).fetch(["WARM"], NYSE_CALENDAR.sessions_back(AS_OF, 300), AS_OF).prices
    matrix = ClosesMatrix.from_frame(closes, ["WARM"], PRESET.window + PRESET.lags)
    forecast_step(matrix, PRESET, epochs=1, warm=[None], targets=[None])


def measure_cold(url: str, count: int) -> dict[str, float]:
    """The first cycle of `count` tickers never seen (prices fetched and stored, first fit)."""
    engine = make_engine(url)
    upgrade(engine)
    return _timed_cycle(engine, count)


def main_cold(sizes: list[int]) -> None:
    print(
        f"default preset, first cycle of new tickers: {PRESET.epochs_first_fit} epochs, window {PRESET.window}; "
        f"{os.cpu_count()} cores; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(f"{'backend':<10} {'tickers':>7} {'wall s':>8} {'peak RSS MB':>12} {'ns per sample-epoch':>20}")
    with tempfile.TemporaryDirectory() as directory:
        for count in sizes:
            result = _in_child("measure-cold", f"sqlite:///{Path(directory) / f'cold{count}.db'}", count)
            per_sample_epoch = result["seconds"] / (count * PRESET.window * PRESET.epochs_first_fit) * 1e9
            print(
                f"{'SQLite':<10} {count:>7} {result['seconds']:>8.1f} {result['peak_rss_mb']:>12.0f} {per_sample_epoch:>20.1f}",
                flush=True,
            )


def run_once(url: str, tickers_file: Path, as_of: date, **settings: str) -> dict[str, float]:
    """One `forecaster run --once --as-of as_of` process (with `settings`: FORECASTER_* variables,
    by their lower-case names): wall seconds, seconds to its first log line, and its peak RSS in MB."""
    env = (
        os.environ
        | {f"FORECASTER_{name.upper()}": value for name, value in settings.items()}
        | {
            "FORECASTER_DATABASE_URL": url,
            "FORECASTER_SOURCE": "synthetic:11",
            "FORECASTER_TICKERS_FILE": str(tickers_file),
            "FORECASTER_PRESET": PRESET.name,
        }
    )
    env.pop("FORECASTER_TICKERS", None)
    command = [str(Path(sys.executable).with_name("forecaster")), "run", "--once", "--as-of", as_of.isoformat()]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    first_line: float | None = None
    lines = []
    for line in process.stderr:
        first_line = first_line if first_line is not None else time.perf_counter() - started
        lines.append(line)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{''.join(lines[-20:])}")
    return {"seconds": wall, "first_line_seconds": first_line or wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def main_whole_process(sizes: list[int], postgres_url: str, backends: list[str]) -> None:
    warm_as_of = NYSE_CALENDAR.next_session(AS_OF)
    print(
        f"whole `forecaster run --once` processes, default preset, synthetic source; cold as of {AS_OF}, "
        f"warm as of {warm_as_of}; {os.cpu_count()} cores; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(
        f"{'backend':<10} {'tickers':>7} {'cycle':<5} {'wall s':>8} {'to 1st line s':>14} {'peak RSS MB':>12} "
        f"{'tickers/s':>10}"
    )
    with tempfile.TemporaryDirectory() as directory:
        for count in sizes:
            tickers_file = Path(directory) / f"watchlist{count}.txt"
            tickers_file.write_text("\n".join(synthetic_tickers(count)) + "\n")
            for backend in backends:
                with (
                    nullcontext(f"sqlite:///{Path(directory) / f'whole{count}.db'}")
                    if backend == "sqlite"
                    else scratch_database(postgres_url, "fc_bench")
                ) as url:
                    for cycle, as_of in (("cold", AS_OF), ("warm", warm_as_of)):
                        result = run_once(url, tickers_file, as_of)
                        print(
                            f"{backend:<10} {count:>7} {cycle:<5} {result['seconds']:>8.1f} "
                            f"{result['first_line_seconds']:>14.1f} {result['peak_rss_mb']:>12.0f} "
                            f"{count / result['seconds']:>10.0f}",
                            flush=True,
                        )


def notebook_seconds_per_ticker(sample: int = 5) -> float:
    """The daily warm-start fit (the default preset's epochs, window and batch) of one ticker
    through the notebook's loop, averaged over a few tickers."""
    closes = (
        SyntheticSource(seed=11).fetch(synthetic_tickers(sample), NYSE_CALENDAR.sessions_back(AS_OF, 300), AS_OF).prices
    )
    samples = features(ClosesMatrix.from_frame(closes, synthetic_tickers(sample), PRESET.window + PRESET.lags), PRESET)
    started = time.perf_counter()
    for k in range(sample):
        x = torch.tensor(samples.x[k, samples.first[k] :], dtype=torch.float32)
        y = torch.tensor(samples.y[k, samples.first[k] :], dtype=torch.float32)
        train_like_notebook(
            x, y, epochs=PRESET.epochs_per_session, batch_size=PRESET.batch_size, learning_rate=PRESET.learning_rate
        )
    return (time.perf_counter() - started) / sample


def _in_child(step: str, url: str, count: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, f"--{step}", url, str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="tickers per cycle, comma-separated (default 100,1000,5000; with --cold, 5000)")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--prepare", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--measure-cold", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help="the first cycle of new tickers, on SQLite")
    parser.add_argument(
        "--whole-process", action="store_true", help="cold then warm `forecaster run --once` processes, timed outside"
    )
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="with --whole-process: sqlite, postgresql or both (default)"
    )
    args = parser.parse_args()
    if args.whole_process:
        sizes = [int(size) for size in (args.sizes or "5000,25000,100000").split(",")]
        main_whole_process(sizes, args.postgres_url, args.backends.split(","))
        return
    if args.measure_cold:
        print(json.dumps(measure_cold(args.measure_cold[0], int(args.measure_cold[1]))))
        return
    if args.cold:
        main_cold([int(size) for size in (args.sizes or "5000").split(",")])
        return
    if args.prepare:
        prepare(args.prepare[0], int(args.prepare[1]))
        print(json.dumps({}))
        return
    if args.measure:
        print(json.dumps(measure(args.measure[0], int(args.measure[1]))))
        return

    per_ticker = notebook_seconds_per_ticker()
    print(
        f"default preset daily cycle: warm start, window {PRESET.window}, {PRESET.epochs_per_session} epochs; "
        f"{os.cpu_count()} cores; notebook's way {per_ticker * 1000:.0f} ms per ticker"
    )
    print(
        f"{'backend':<10} {'tickers':>7} {'wall s':>8} {'peak RSS MB':>12} {'tickers/s':>10} {'notebook way s':>15} {'speed-up':>9}"
    )
    with tempfile.TemporaryDirectory() as directory:
        for count in (int(size) for size in (args.sizes or "100,1000,5000").split(",")):
            for backend in ("sqlite", "postgresql"):
                with (
                    nullcontext(f"sqlite:///{Path(directory) / f'scale{count}.db'}")
                    if backend == "sqlite"
                    else scratch_database(args.postgres_url, "fc_bench")
                ) as url:
                    _in_child("prepare", url, count)
                    result = _in_child("measure", url, count)
                notebook = per_ticker * count
                print(
                    f"{backend:<10} {count:>7} {result['seconds']:>8.2f} {result['peak_rss_mb']:>12.0f} "
                    f"{count / result['seconds']:>10.0f} {notebook:>15.0f} {notebook / result['seconds']:>8.0f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()
