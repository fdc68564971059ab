"""`forecaster fit`: train a preset on a price file; print the forecast, its interval and the weights (no database)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster.errors import EXIT_FAILURE, EXIT_OK, UserError

if TYPE_CHECKING:
    import numpy as np

    from forecaster.model.closes import ClosesMatrix
    from forecaster.model.intervals import PredictionInterval
    from forecaster.model.presets import Preset
    from forecaster.model.step import StepResult


def read_params_file(path: str) -> np.ndarray:
    """A (12,) parameter row from a JSON object of the 12 named parameters."""
    import numpy as np

    from forecaster.model.cell import params_from_dict

    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a JSON object of the 12 named parameters")
    try:
        row = params_from_dict(values)
    except (ValueError, TypeError) as error:
        raise UserError(f"{path}: {error}") from None
    if not np.all(np.isfinite(row)):
        raise UserError(f"{path}: parameters must be finite numbers")
    return row


def _write_losses_csv(path: str, tickers: list[str], losses: list[np.ndarray]) -> None:
    """epoch,loss for one ticker; ticker,epoch,loss for several."""
    try:
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            if len(tickers) == 1:
                writer.writerow(["epoch", "loss"])
                writer.writerows((epoch, repr(float(loss))) for epoch, loss in enumerate(losses[0], 1))
            else:
                writer.writerow(["ticker", "epoch", "loss"])
                for ticker, row in zip(tickers, losses, strict=True):
                    writer.writerows((ticker, epoch, repr(float(loss))) for epoch, loss in enumerate(row, 1))
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror})") from None


def _interval_json(interval: PredictionInterval | None) -> dict[str, Any] | None:
    if interval is None:
        return None
    return {
        "lower_80": interval.lower_80,
        "upper_80": interval.upper_80,
        "lower_95": interval.lower_95,
        "upper_95": interval.upper_95,
        "method": interval.method,
    }


def _summary_line(row: dict[str, Any]) -> str:
    """A ticker's result as the help promises it: loss, forecast, both intervals, then the 12 weights."""
    band = row["interval"]
    shown = (
        f", 80 % interval {band['lower_80']:.4f} .. {band['upper_80']:.4f}"
        f", 95 % interval {band['lower_95']:.4f} .. {band['upper_95']:.4f}"
        if band
        else ""
    )
    weights = ", ".join(f"{name} {value:.6g}" for name, value in row["params"].items())
    return (
        f"  {row['ticker']}: {row['samples']} samples, final loss {row['final_loss']:.6g}, "
        f"last close {row['last_close']:.4f}, next close forecast {row['next_close']:.4f}{shown}\n"
        f"    weights: {weights}"
    )


def _closes(args: argparse.Namespace, preset: Preset) -> ClosesMatrix:
    """The file's closes (the --ticker's alone, if given), each ticker with enough for one sample."""
    from forecaster.model.closes import ClosesMatrix
    from forecaster.prices.files import read_price_file

    prices = read_price_file(args.prices, ticker=args.ticker)
    tickers = prices["ticker"].unique(maintain_order=True).to_list()
    matrix = ClosesMatrix.from_frame(prices, tickers, preset.window + preset.lags)
    for ticker, count in zip(tickers, matrix.counts, strict=True):
        if count < preset.lags + 1:
            raise UserError(f"{ticker}: {count} closes, need at least {preset.lags + 1} for {preset.lags} lags")
    return matrix


def _timed_fit(
    matrix: ClosesMatrix, preset: Preset, epochs: int, initial: np.ndarray | None
) -> tuple[StepResult, float, float]:
    """A first fit of every ticker, with no target session (so the intervals are the fallback's:
    the file's own volatility-scaled returns, as a new ticker's first cycle gets them); and the
    seconds it took to load the compiled kernels (one epoch of the first ticker, run first) and
    to train."""
    from forecaster.model.step import forecast_step

    def fit(rows: ClosesMatrix, epochs: int) -> StepResult:
        none = [None] * len(rows.tickers)
        return forecast_step(rows, preset, epochs=epochs, warm=none, targets=none, initial=initial)

    started = time.perf_counter()
    fit(matrix.rows(matrix.tickers[:1]), 1)
    loaded = time.perf_counter()
    result = fit(matrix, epochs)
    return result, loaded - started, time.perf_counter() - loaded


def command_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from forecaster.model.cell import params_to_dict
    from forecaster.model.presets import get_preset

    preset = get_preset(args.preset)
    matrix = _closes(args, preset)
    epochs = args.epochs or preset.epochs_first_fit
    initial = read_params_file(args.init_params) if args.init_params else None
    result, load_seconds, train_seconds = _timed_fit(matrix, preset, epochs, initial)
    if args.losses_csv:
        _write_losses_csv(args.losses_csv, [f.ticker for f in result.forecasts], [f.losses for f in result.forecasts])
    samples = dict(zip(matrix.tickers, np.minimum(matrix.counts - preset.lags, preset.window), strict=True))
    results: list[dict[str, Any]] = [
        {
            "ticker": forecast.ticker,
            "samples": int(samples[forecast.ticker]),
            "final_loss": float(forecast.losses[-1]),
            "last_close": forecast.last_close,
            "next_close": forecast.predicted_close,
            "interval": _interval_json(forecast.interval),
            "params": params_to_dict(forecast.checkpoint.params),
        }
        for forecast in result.forecasts
    ]
    if args.json:
        summary = {
            "preset": preset.name,
            "epochs": epochs,
            "load_seconds": load_seconds,
            "train_seconds": train_seconds,
        }
        summary["tickers"] = results
        if len(matrix.tickers) == 1:
            summary |= {key: results[0][key] for key in ("ticker", "final_loss", "params", "next_close", "interval")}
        print(json.dumps(summary))
    else:
        print(
            f"preset {preset.name}: {epochs} epochs, {len(matrix.tickers)} ticker(s), training took "
            f"{train_seconds:.3f} s (loading the compiled trainer {load_seconds:.2f} s)"
        )
        print("\n".join(_summary_line(row) for row in results))
    if result.diverged:
        shown = ", ".join(result.diverged)
        print(f"forecaster fit: training diverged (a non-finite loss, weight or forecast) for {shown}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
