"""Seed preset speed: the notebook's loop and ours, side by side in one run, as ratios.

    python benchmarks/seed_speed.py [--epochs 300] [--tickers 1000]

Both loops train the seed preset on the notebook's data (tests/fixtures/seed_parity)
from the same initial weights for the same epochs; only the training loop is timed
(no imports, no file reading). Ours is timed after one untimed call that loads the
compiled kernel (its one-off compile time is printed too). Then `--tickers` copies
of the series, each with its own noise, train together, against one ticker alone.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import torch

from forecaster.model.closes import ClosesMatrix
from forecaster.model.features import features
from forecaster.model.notebook_reference import train_like_notebook
from forecaster.model.presets import PRESETS
from forecaster.model.step import StepResult, forecast_step

PRICES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "seed_parity" / "prices.csv"
SEED = PRESETS["seed"]
T = TypeVar("T")


def _closes(copies: int = 1) -> ClosesMatrix:
    """The notebook's closes as `copies` tickers: the same series, each copy after the first scaled by
    its own factor so no two are alike."""
    prices = pl.read_csv(PRICES, try_parse_dates=True)
    one = ClosesMatrix.from_frame(
        prices.select(
            pl.lit("SPLG").alias("ticker"), pl.col("Date").alias("session_date"), pl.col("Close").alias("close")
        ),
        ["SPLG"],
        SEED.window + SEED.lags,
    )
    if copies == 1:
        return one
    factors = np.random.default_rng(0).uniform(0.9, 1.1, size=copies)
    return ClosesMatrix(
        [f"T{k}" for k in range(copies)], one.closes * factors[:, None], np.repeat(one.dates, copies, axis=0)
    )


def _fit(closes: ClosesMatrix, epochs: int) -> StepResult:
    none = [None] * len(closes.tickers)
    return forecast_step(closes, SEED, epochs=epochs, warm=none, targets=none)


def _timed(function: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--tickers", type=int, default=1000)
    args = parser.parse_args()
    preset = SEED
    closes = _closes()
    samples = features(closes, preset)
    first = int(samples.first[0])
    x = torch.tensor(samples.x[0, first:], dtype=torch.float32)
    y = torch.tensor(samples.y[0, first:], dtype=torch.float32)
    print(
        f"seed preset, {len(y)} samples, batch {preset.batch_size}, {args.epochs} epochs, torch threads {torch.get_num_threads()}"
    )

    notebook_seconds, (_, notebook_losses) = _timed(lambda: train_like_notebook(x, y, epochs=args.epochs))
    compile_seconds, _ = _timed(lambda: _fit(closes, 1))
    ours_seconds, ours = _timed(lambda: _fit(closes, args.epochs))
    drift = abs(ours.forecasts[0].losses[-1] - notebook_losses[-1]) / notebook_losses[-1]
    print(f"notebook loop (DataLoader + autograd): {notebook_seconds:9.3f} s")
    print(
        f"forecaster seed preset:                {ours_seconds:9.3f} s   (kernel load/compile once: {compile_seconds:.2f} s)"
    )
    print(f"speed-up: {notebook_seconds / ours_seconds:.0f}x   final-loss relative difference: {drift:.1e}")

    many = _closes(args.tickers)
    many_seconds, _ = _timed(lambda: _fit(many, args.epochs))
    print(f"{args.tickers} tickers together:              {many_seconds:9.3f} s")
    print(f"cost of {args.tickers} tickers / one ticker: {many_seconds / ours_seconds:.0f}x")
    print(
        f"notebook's way for {args.tickers} tickers (one at a time, extrapolated) / ours: "
        f"{notebook_seconds * args.tickers / many_seconds:.0f}x"
    )
    print(
        json.dumps(
            {
                "epochs": args.epochs,
                "notebook_seconds": notebook_seconds,
                "ours_seconds": ours_seconds,
                "speedup": notebook_seconds / ours_seconds,
                "tickers": args.tickers,
                "many_seconds": many_seconds,
                "many_over_one": many_seconds / ours_seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
