"""Forecast accuracy out of sample, through the real backfill, on real daily prices.

    python benchmarks/accuracy.py [--span held-out|tuning] [--etf-file F] [--stock-file F] [--seed-sessions N]

For each price file and preset, a fresh SQLite database in a temporary directory is
migrated and `forecaster.cycle.backfill` walks every session of the span with a
CsvSource over the file: each forecast is made after the close of `as_of` for the
next session, from prices through `as_of` only, warm-started from the previous
session's state, exactly as the daemon does. Forecasts are read back through the
`prediction_accuracy` view. The naive forecast is the last close (`last_close`).

The default preset was tuned on the tuning spans only; the held-out spans come later
and were not looked at while tuning. The seed preset (raw closes, 2000 first-fit
epochs) can be limited to the first N sessions of a span with --seed-sessions.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from forecaster import calendar
from forecaster.cycle import CycleContext, backfill
from forecaster.model.presets import PRESETS, Preset
from forecaster.prices.sources.csv_file import CsvSource
from forecaster.store.database import make_engine, upgrade
from forecaster.store.accuracy import load_predictions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Span:
    start: date  # first as_of
    end: date  # last as_of


@dataclass(frozen=True)
class Universe:
    label: str
    default_file: Path
    tickers: tuple[str, ...]
    tuning: Span
    held_out: Span


UNIVERSES = (
    Universe(
        "ETFs", DATA / "etf_daily_long.csv", ("SPY", "QQQ", "IWM", "EFA", "TLT"),
        tuning=Span(date(2014, 1, 2), date(2016, 12, 30)), held_out=Span(date(2017, 1, 3), date(2019, 12, 30)),
    ),
    Universe(
        "US stocks", DATA / "us_daily_2007_2016_long.csv", ("AAPL", "IBM", "MSFT", "SBUX", "^GSPC"),
        tuning=Span(date(2010, 1, 4), date(2012, 12, 31)), held_out=Span(date(2013, 1, 2), date(2016, 2, 29)),
    ),
)


def run_backfill(path: Path, tickers: tuple[str, ...], preset: Preset, span: Span) -> tuple[pl.DataFrame, float]:
    """Every forecast of `preset` over `span`, with its outcome, from a fresh database; and the wall time."""
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{directory}/accuracy.db")
        try:
            upgrade(engine)
            # The backfill fetches history_sessions (300) before its first session: a full window at once.
            context = CycleContext(engine=engine, source=CsvSource(path), tickers=tickers, preset=preset)
            started = time.perf_counter()
            backfill(context, span.start, span.end)
            elapsed = time.perf_counter() - started
            with engine.connect() as connection:
                frame = load_predictions(connection=connection, preset=preset.name)
        finally:
            engine.dispose()
    return frame.filter(pl.col("actual_close").is_not_null()), elapsed


def _metrics(frame: pl.DataFrame, *, naive: bool) -> dict[str, float]:
    error = (frame["last_close"] if naive else frame["predicted_close"]) - frame["actual_close"]
    abs_error = error.abs()
    naive_mae = float(frame["naive_abs_error"].mean())
    move = (frame["predicted_close"] / frame["last_close"] - 1.0).abs() * 1e4
    return {
        "n": frame.height,
        "mae": float(abs_error.mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "mape": float((100.0 * abs_error / frame["actual_close"]).mean()),
        "dir": float("nan") if naive else float(frame["direction_hit"].mean()),
        "ratio": float(abs_error.mean()) / naive_mae,
        "move_bp": float("nan") if naive else float(move.mean()),
        "moved": float("nan") if naive else float((move > 1.0).mean()),
    }


def _row(ticker: str, model: str, m: dict[str, float]) -> str:
    def cell(value: float, fmt: str) -> str:
        return "—" if np.isnan(value) else format(value, fmt)

    return (
        f"{ticker:<8} {model:<8} {m['n']:>5} {m['mae']:>9.4f} {m['rmse']:>9.4f} {m['mape']:>7.3f} "
        f"{cell(m['dir'], '.3f'):>6} {m['ratio']:>9.4f} {cell(m['move_bp'], '.1f'):>8} {cell(m['moved'], '.3f'):>7}"
    )


HEADER = (
    f"{'ticker':<8} {'model':<8} {'n':>5} {'MAE':>9} {'RMSE':>9} {'MAPE%':>7} {'dir':>6} {'MAE/naive':>9} "
    f"{'|move|bp':>8} {'>1bp':>7}"
)


def table(results: dict[str, pl.DataFrame]) -> list[str]:
    """One block per ticker, then overall (MAE/naive overall = mean of the per-ticker ratios; other
    columns pooled over all forecasts)."""
    lines = [HEADER]
    tickers = sorted(set().union(*(frame["ticker"].unique().to_list() for frame in results.values())))
    first = next(iter(results.values()))
    for ticker in [*tickers, "overall"]:
        for name, frame in results.items():
            part = frame if ticker == "overall" else frame.filter(pl.col("ticker") == ticker)
            if part.height == 0:
                continue
            metrics = _metrics(part, naive=False)
            if ticker == "overall":
                metrics["ratio"] = float(np.mean([
                    _metrics(part.filter(pl.col("ticker") == t), naive=False)["ratio"] for t in part["ticker"].unique()
                ]))
            lines.append(_row(ticker, name, metrics))
        part = first if ticker == "overall" else first.filter(pl.col("ticker") == ticker)
        lines.append(_row(ticker, "naive", _metrics(part, naive=True)))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--span", choices=["held-out", "tuning"], default="held-out")
    parser.add_argument("--etf-file", type=Path, default=UNIVERSES[0].default_file)
    parser.add_argument("--stock-file", type=Path, default=UNIVERSES[1].default_file)
    parser.add_argument("--presets", default="default,seed", help="comma-separated presets (default: default,seed)")
    parser.add_argument(
        "--seed-sessions", type=int, default=0,
        help="evaluate the seed preset on only the first N sessions of each span (0: the whole span)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    files = {UNIVERSES[0].label: args.etf_file, UNIVERSES[1].label: args.stock_file}
    total_started = time.perf_counter()
    print("command: python " + " ".join(sys.argv))
    for universe in UNIVERSES:
        span = universe.held_out if args.span == "held-out" else universe.tuning
        print(f"\n## {universe.label}: {files[universe.label]}")
        print(f"tuning span (as_of): {universe.tuning.start} to {universe.tuning.end}; "
              f"held-out span (as_of): {universe.held_out.start} to {universe.held_out.end}; this run: {args.span}")
        results: dict[str, pl.DataFrame] = {}
        for name in args.presets.split(","):
            preset = PRESETS[name]
            run_span = span
            if name == "seed" and args.seed_sessions:
                sessions = calendar.sessions_between(span.start, span.end)[: args.seed_sessions]
                run_span = Span(sessions[0], sessions[-1])
            frame, elapsed = run_backfill(files[universe.label], universe.tickers, preset, run_span)
            print(f"{name}: backfill {run_span.start} to {run_span.end}, {frame.height} scored forecasts, {elapsed:.1f} s")
            results[name] = frame
        if args.seed_sessions and "seed" in results and len(results) > 1:
            print(f"(seed evaluated on the first {args.seed_sessions} sessions only; its rows are not comparable "
                  "with the other presets' full-span rows; naive rows are over the full span)")
        print("\n".join(table(results)))
    print(f"\nwall time: {time.perf_counter() - total_started:.1f} s")


if __name__ == "__main__":
    main()
