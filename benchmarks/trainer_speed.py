"""Trainer speed: ns per sample-epoch of both presets over many tickers, against the arithmetic limit.

    python benchmarks/trainer_speed.py [--tickers 1000] [--epochs 100] [--repeats 5]

Each measurement is the real command, `forecaster fit --preset P --prices FILE --epochs E
--json`, in a process of its own on a synthetic long-layout price file (252 samples per
ticker): its `train_seconds` (the kernel load is reported apart, as `load_seconds`) over
tickers × samples × epochs. The machine is usually shared, so min and median are printed
with the load average.

The limit is the cell's arithmetic at this machine's measured peak. Per sample-epoch (one
ticker, one sample, forward + backward over 4 lags, its share of Adam), counting each
vector-lane operation once (an FMA is one; see the README, "The trainer near the
machine's limit", for the count):
    seed (relu, MSE):     12 exps and 12 divisions, 508 operations
    default (tanh, MAE):  20 exps and 20 divisions, 704 operations
and a core retires at best one FMA per FMA unit per cycle, 8 float32 lanes each with AVX2;
that rate is measured here on independent scalar FMAs. Taking every operation at that rate
is the limit (additions could issue on other units, divisions are slower: it is a yardstick,
not a promise).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from statistics import median

import numba

from forecaster.calendar import NYSE, trading_calendar
from forecaster.prices.sources.synthetic import SyntheticSource

NYSE_CALENDAR = trading_calendar(NYSE)

AS_OF = date(2024, 6, 3)
SAMPLES = 252
OPERATIONS = {"seed": 508, "default": 704}  # per sample-epoch, see the docstring
LANES_PER_VECTOR = 8  # float32 in a 256-bit AVX2 register


@numba.njit(cache=True, fastmath={"contract"})
def _independent_fmas(a: float, b: float, n: int) -> float:
    x0 = x1 = x2 = x3 = x4 = x5 = x6 = x7 = x8 = x9 = x10 = x11 = 1.0
    for _ in range(n):  # 12 chains: more than FMA latency (4) x units (2), so throughput-bound
        x0 = x0 * a + b
        x1 = x1 * a + b
        x2 = x2 * a + b
        x3 = x3 * a + b
        x4 = x4 * a + b
        x5 = x5 * a + b
        x6 = x6 * a + b
        x7 = x7 * a + b
        x8 = x8 * a + b
        x9 = x9 * a + b
        x10 = x10 * a + b
        x11 = x11 * a + b
    return x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11


def fma_rate_per_core() -> float:
    """Independent FMAs retired per second by one core (best of 5): the FMA units' throughput."""
    _independent_fmas(0.999, 1e-9, 10)
    n = 50_000_000
    best = min(_timed_cpu(lambda: _independent_fmas(0.999, 1e-9, n)) for _ in range(5))
    return 12 * n / best


def _timed_cpu(function: Callable[[], object]) -> float:
    started = time.process_time()
    function()
    return time.process_time() - started


def write_prices(path: Path, tickers: int) -> None:
    """A long-layout price file: `tickers` synthetic tickers, enough sessions for 252 samples of either preset."""
    names = [f"S{k:05d}" for k in range(tickers)]
    prices = SyntheticSource(seed=11).fetch(names, NYSE_CALENDAR.sessions_back(AS_OF, SAMPLES + 8), AS_OF).prices
    prices.select(prices["session_date"].alias("date"), "ticker", "close").write_csv(path)


def fit_once(preset: str, prices: Path, epochs: int) -> dict[str, float]:
    command = Path(sys.executable).parent / "forecaster"
    result = subprocess.run(
        [str(command), "fit", "--preset", preset, "--prices", str(prices), "--epochs", str(epochs), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    samples = sum(ticker["samples"] for ticker in summary["tickers"])
    return {
        "ns": summary["train_seconds"] / (samples * epochs) * 1e9,
        "load_seconds": summary["load_seconds"],
        "samples_per_ticker": samples / len(summary["tickers"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cores = numba.config.NUMBA_NUM_THREADS
    fma_rate = fma_rate_per_core()
    ops_per_ns = LANES_PER_VECTOR * fma_rate * cores / 1e9
    print(
        f"{cores} cores; one core retires {fma_rate / 1e9:.2f} G independent FMAs/s (both FMA units busy); "
        f"peak with {LANES_PER_VECTOR} float32 lanes, all cores: {ops_per_ns:.0f} vector-lane operations per ns"
    )
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"{'preset':<8} {'tickers':>7} {'samples':>7} {'epochs':>6} {'min ns':>7} {'median ns':>9} {'limit ns':>8} "
        f"{'min/limit':>9} {'load s':>6}"
    )
    with tempfile.TemporaryDirectory() as directory:
        prices = Path(directory) / "prices.csv"
        write_prices(prices, args.tickers)
        for preset in ("default", "seed"):
            runs = [fit_once(preset, prices, args.epochs) for _ in range(args.repeats)]
            times = sorted(run["ns"] for run in runs)
            limit = OPERATIONS[preset] / ops_per_ns
            print(
                f"{preset:<8} {args.tickers:>7} {runs[0]['samples_per_ticker']:>7.0f} {args.epochs:>6} {times[0]:>7.1f} "
                f"{median(times):>9.1f} {limit:>8.1f} {times[0] / limit:>8.1f}x {median(r['load_seconds'] for r in runs):>6.2f}",
                flush=True,
            )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
