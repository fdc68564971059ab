"""`forecaster fit`: train a preset on a price file; print the forecast, its interval and the weights (no database)."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster.errors import EXIT_OK, UserError

if TYPE_CHECKING:
    import numpy as np

    from forecaster.model.forecasting import Forecast


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


def _write_losses_csv(path: str, tickers: list[str], losses: np.ndarray) -> None:
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


def _intervals(forecast: Forecast, closes: Any, width: int) -> list[dict[str, Any] | None]:
    """Each ticker's 80 % and 95 % interval of its next close. With no forecast history in a
    file, this is the interval method's fallback (the file's own returns, volatility-scaled)."""
    from forecaster.model import intervals

    window = intervals.closes_matrix(closes, forecast.tickers, width)  # (tickers, closes)
    bounds = intervals.intervals(
        intervals.IntervalState.empty(len(forecast.tickers)),
        forecast.predicted_close,
        intervals.volatility_scale(window),
        intervals.fallback_scores(window),
    )
    return [
        None
        if bounds.method[k] is None
        else {
            "lower_80": float(bounds.lower_80[k]),
            "upper_80": float(bounds.upper_80[k]),
            "lower_95": float(bounds.lower_95[k]),
            "upper_95": float(bounds.upper_95[k]),
            "method": bounds.method[k],
        }
        for k in range(len(forecast.tickers))
    ]


def command_fit(args: argparse.Namespace) -> int:
    from forecaster.model.cell import params_to_dict
    from forecaster.model.features import TrainingWindows, training_windows
    from forecaster.model.forecasting import fit_and_forecast, initial_params
    from forecaster.model.presets import get_preset
    from forecaster.prices.files import read_price_file

    preset = get_preset(args.preset)
    prices = read_price_file(args.prices, ticker=args.ticker)
    closes = prices.select("ticker", "session_date", "close")
    windows = training_windows(closes, lags=preset.lags, window=preset.window)
    n_tickers = len(windows.tickers)
    params = initial_params(n_tickers)
    if args.init_params:
        params[:] = read_params_file(args.init_params)
    epochs = args.epochs or preset.epochs_first_fit

    # One epoch of the first ticker loads the compiled kernels (or compiles them, once per
    # install), so that train_seconds is the training alone.
    started = time.perf_counter()
    first_ticker = TrainingWindows(
        tickers=windows.tickers[:1],
        x=windows.x[:1],
        y=windows.y[:1],
        first=windows.first[:1],
        latest_lags=windows.latest_lags[:1],
    )
    fit_and_forecast(first_ticker, preset, epochs=1)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    forecast = fit_and_forecast(windows, preset, epochs=epochs, params=params)
    train_seconds = time.perf_counter() - started

    if args.losses_csv:
        _write_losses_csv(args.losses_csv, forecast.tickers, forecast.losses)

    bands = _intervals(forecast, closes, preset.window + preset.lags)
    results: list[dict[str, Any]] = [
        {
            "ticker": ticker,
            "samples": int(windows.x.shape[1] - windows.first[k]),
            "final_loss": float(forecast.losses[k, -1]),
            "last_close": float(forecast.last_close[k]),
            "next_close": float(forecast.predicted_close[k]),
            "interval": bands[k],
            "params": params_to_dict(forecast.params[k]),
        }
        for k, ticker in enumerate(forecast.tickers)
    ]
    if args.json:
        summary = {
            "preset": preset.name,
            "epochs": epochs,
            "load_seconds": load_seconds,
            "train_seconds": train_seconds,
            "tickers": results,
        }
        if n_tickers == 1:
            summary |= {key: results[0][key] for key in ("ticker", "final_loss", "params", "next_close", "interval")}
        print(json.dumps(summary))
    else:
        print(
            f"preset {preset.name}: {epochs} epochs, {n_tickers} ticker(s), training took {train_seconds:.3f} s "
            f"(loading the compiled trainer {load_seconds:.2f} s)"
        )
        for result in results:
            band = result["interval"]
            shown = f", 80 % interval {band['lower_80']:.4f} .. {band['upper_80']:.4f}" if band else ""
            print(
                f"  {result['ticker']}: {result['samples']} samples, final loss {result['final_loss']:.6g}, "
                f"last close {result['last_close']:.4f}, next close forecast {result['next_close']:.4f}{shown}"
            )
    return EXIT_OK
