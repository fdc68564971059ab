"""Every command of `forecaster`: parse the flags, call the package, print the outcome.

Bad input ends a command with one line on stderr and exit code 2; see UserError.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from forecaster import calendar
from forecaster.config import Settings, load_settings
from forecaster.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USER_ERROR,
    CycleInterrupted,
    DatabaseUnavailable,
    UserError,
    one_line,
)
from forecaster.logs import configure_logging, redact
from forecaster.signals import stop_on_signals

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("forecaster.cli")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


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
                for ticker, row in zip(tickers, losses):
                    writer.writerows((ticker, epoch, repr(float(loss))) for epoch, loss in enumerate(row, 1))
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror})") from None


def command_fit(args: argparse.Namespace) -> int:
    from forecaster.model.cell import params_to_dict
    from forecaster.model.features import TrainingWindows, training_windows
    from forecaster.model.forecasting import fit_and_forecast, initial_params
    from forecaster.model.presets import get_preset
    from forecaster.prices.files import read_price_file

    preset = get_preset(args.preset)
    prices = read_price_file(args.prices, ticker=args.ticker)
    windows = training_windows(prices.select("ticker", "session_date", "close"), lags=preset.lags, window=preset.window)
    n_tickers = len(windows.tickers)
    params = initial_params(n_tickers)
    if args.init_params:
        params[:] = read_params_file(args.init_params)
    epochs = args.epochs or preset.epochs_first_fit

    # One epoch of the first ticker loads the compiled kernels (or compiles them, once per
    # install), so that train_seconds is the training alone.
    started = time.perf_counter()
    first_ticker = TrainingWindows(
        tickers=windows.tickers[:1], x=windows.x[:1], y=windows.y[:1], first=windows.first[:1], latest_lags=windows.latest_lags[:1]
    )
    fit_and_forecast(first_ticker, preset, epochs=1)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    forecast = fit_and_forecast(windows, preset, epochs=epochs, params=params)
    train_seconds = time.perf_counter() - started

    if args.losses_csv:
        _write_losses_csv(args.losses_csv, forecast.tickers, forecast.losses)

    results = [
        {
            "ticker": ticker,
            "samples": int(windows.x.shape[1] - windows.first[k]),
            "final_loss": float(forecast.losses[k, -1]),
            "last_close": float(forecast.last_close[k]),
            "next_close": float(forecast.predicted_close[k]),
            "params": params_to_dict(forecast.params[k]),
        }
        for k, ticker in enumerate(forecast.tickers)
    ]
    if args.json:
        summary = {
            "preset": preset.name, "epochs": epochs, "load_seconds": load_seconds, "train_seconds": train_seconds,
            "tickers": results,
        }
        if n_tickers == 1:
            summary |= {key: results[0][key] for key in ("ticker", "final_loss", "params", "next_close")}
        print(json.dumps(summary))
    else:
        print(
            f"preset {preset.name}: {epochs} epochs, {n_tickers} ticker(s), training took {train_seconds:.3f} s "
            f"(loading the compiled trainer {load_seconds:.2f} s)"
        )
        for result in results:
            print(
                f"  {result['ticker']}: {result['samples']} samples, final loss {result['final_loss']:.6g}, "
                f"last close {result['last_close']:.4f}, next close forecast {result['next_close']:.4f}"
            )
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment (and config file), then the flags given."""
    overrides = {name: getattr(args, name, None) for name in ("database_url", "source", "preset", "tickers")}
    settings = load_settings(config_file=getattr(args, "config", None)).with_overrides(**overrides)
    configure_logging(settings.log_format)
    return settings


def command_db_upgrade(args: argparse.Namespace) -> int:
    from forecaster.daemon.leadership import Leadership
    from forecaster.store.database import current_revision, opened_engine, upgrade

    with opened_engine(_settings(args).database) as engine:
        leadership = Leadership(engine, role="forecaster db upgrade")
        if leadership.single_process:  # SQLite: not under a running writer
            leadership.acquire_or_refuse()
        try:
            upgrade(engine)
            print(f"database at revision {current_revision(engine)}")
        finally:
            leadership.release()
    return EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    from forecaster.cycle import work
    from forecaster.daemon.jobs import forecast_job, forecast_job_as_scheduler, opened_context, report_job
    from forecaster.daemon.scheduler import daemon_triggers, serve

    settings = _settings(args)
    if args.as_of and not args.once:
        raise UserError("--as-of: only with --once")
    if args.as_of and not calendar.is_session(args.as_of):
        raise UserError(f"--as-of {args.as_of}: not a NYSE trading session")
    triggers = daemon_triggers(settings)
    stop = threading.Event()
    role = "forecaster run --once" if args.once else "forecaster run"
    with stop_on_signals(stop), opened_context(
        settings, role=role, stop=stop, exclusive=args.once, wait_for_database=not args.once
    ) as (context, leadership):
        if args.once:
            try:
                outcomes = forecast_job(context, as_of=args.as_of)
            except CycleInterrupted:
                log.warning("stopped before the end; run the same command again to complete it")
                return EXIT_FAILURE
            return EXIT_OK if outcomes[-1].status in ("ok", "partial") else EXIT_FAILURE
        serve(
            settings, triggers,
            forecast=lambda trigger: forecast_job_as_scheduler(context, settings, leadership, trigger=trigger),
            report=lambda: report_job(context, settings), work=lambda: work(context), leadership=leadership, stop=stop,
        )
    return EXIT_OK


def command_backfill(args: argparse.Namespace) -> int:
    from forecaster.cycle import backfill, close_abandoned_runs
    from forecaster.daemon.jobs import opened_context
    from forecaster.progress import ProgressBar

    if args.end < args.start:
        raise UserError(f"--end {args.end} is before --start {args.start}")
    sessions = calendar.sessions_between(args.start, args.end)
    if not sessions:
        raise UserError(f"no trading session between {args.start} and {args.end}")
    settings = _settings(args)
    bar = ProgressBar(total=len(sessions), stream=sys.stderr)
    stop = threading.Event()
    with stop_on_signals(stop), opened_context(settings, role="forecaster backfill", stop=stop) as (context, _):
        close_abandoned_runs(context)
        try:
            outcomes = backfill(context, args.start, args.end, on_cycle=lambda outcome: bar.advance(str(outcome.as_of)))
        except CycleInterrupted:
            bar.close()
            log.warning("stopped before the end; run the same command again to complete it")
            return EXIT_FAILURE
    bar.close()
    failed = sum(1 for outcome in outcomes if outcome.status == "failed")
    print(
        f"backfill {args.start} .. {args.end}: {len(outcomes)} sessions, "
        f"{sum(o.tickers_ok for o in outcomes)} forecasts written, "
        f"{sum(o.tickers_skipped for o in outcomes)} already there, "
        f"{sum(o.tickers_failed for o in outcomes)} ticker failures, {failed} failed sessions"
    )
    return EXIT_FAILURE if failed == len(outcomes) else EXIT_OK


def command_predictions(args: argparse.Namespace) -> int:
    import polars as pl

    from forecaster.store.database import opened_engine
    from forecaster.store.accuracy import load_predictions

    settings = _settings(args)
    with opened_engine(settings.database, create=False) as engine, engine.connect() as connection:
        frame = load_predictions(connection=connection, ticker=args.ticker, since=args.since, preset=args.preset)
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        print(json.dumps(frame.to_dicts(), default=str))
    else:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            print(frame)
    return EXIT_OK


def _writable_directory(path: Path) -> Path:
    """`path` as a directory this process can write into (created if missing), else a UserError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{path}: exists and is not a directory") from None
    except OSError as error:
        raise UserError(f"{path}: cannot create the directory ({error.strerror})") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UserError(f"{path}: cannot write into the directory ({error.strerror})") from None
    return path


def command_report(args: argparse.Namespace) -> int:
    from forecaster.report.data import DEFAULT_PER_END
    from forecaster.report.writer import write_reports
    from forecaster.store.database import opened_engine

    settings = _settings(args)
    out_dir = _writable_directory(Path(args.out or settings.report_dir))
    with opened_engine(settings.database, create=False) as engine:
        paths = write_reports(
            engine,
            as_of=args.date,
            preset=settings.preset,
            formats=[fmt.strip() for fmt in args.format.split(",")],
            out_dir=out_dir,
            charts=DEFAULT_PER_END if args.charts is None else args.charts,
        )
    print("\n".join(str(path) for path in paths))
    return EXIT_OK


def command_status(args: argparse.Namespace) -> int:
    from forecaster.daemon.health import check_health
    from forecaster.store.database import opened_engine

    settings = _settings(args)
    with opened_engine(settings.database, create=False) as engine:
        health = check_health(engine, settings, datetime.now(timezone.utc))
    print("\n".join(health.lines))
    return EXIT_OK if health.healthy else EXIT_FAILURE


def _add_settings_flags(parser: argparse.ArgumentParser, *, job: bool) -> None:
    parser.add_argument("--config", help="TOML settings file (else FORECASTER_CONFIG_FILE)")
    parser.add_argument("--database-url", help="else FORECASTER_DATABASE_URL (default sqlite:///forecaster.db)")
    if job:
        parser.add_argument("--source", help="yahoo, csv:PATH or synthetic[:SEED] (else FORECASTER_SOURCE)")
        parser.add_argument("--tickers", help="comma-separated (else FORECASTER_TICKERS)")
        parser.add_argument("--preset", help="seed or default (else FORECASTER_PRESET)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forecaster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="train on a price file and print the result (no database)")
    fit.add_argument("--preset", default="seed", help="seed (the notebook exactly) or default")
    fit.add_argument("--prices", required=True, help="CSV: yfinance layout (Date,Close,...) or long (date,ticker,close,...)")
    fit.add_argument("--ticker", help="only this ticker of a long file")
    fit.add_argument("--epochs", type=_positive_int, help="default: the preset's first-fit epochs")
    fit.add_argument("--init-params", help="JSON object of the 12 named starting parameters")
    fit.add_argument("--losses-csv", help="write epoch,loss (the epoch's mean batch loss) here")
    fit.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    fit.set_defaults(handler=command_fit)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db_upgrade = db.add_parser("upgrade", help="apply migrations up to the latest")
    _add_settings_flags(db_upgrade, job=False)
    db_upgrade.set_defaults(handler=command_db_upgrade)

    run = commands.add_parser("run", help="the daemon: catch up, then forecast after every close")
    _add_settings_flags(run, job=True)
    run.add_argument("--once", action="store_true", help="catch up through the latest (or --as-of) session, then exit")
    run.add_argument("--as-of", type=_date, help="with --once: the last session to forecast from")
    run.set_defaults(handler=command_run)

    backfill = commands.add_parser("backfill", help="walk the daily cycle over past sessions (the backtest)")
    _add_settings_flags(backfill, job=True)
    backfill.add_argument("--start", type=_date, required=True)
    backfill.add_argument("--end", type=_date, required=True)
    backfill.set_defaults(handler=command_backfill)

    predictions = commands.add_parser("predictions", help="stored forecasts with their realised errors")
    _add_settings_flags(predictions, job=False)
    predictions.add_argument("--ticker", type=str.upper)
    predictions.add_argument("--since", type=_date, help="target sessions from this date")
    predictions.add_argument("--preset", help="only this preset")
    predictions.add_argument("--format", choices=("table", "csv", "json"), default="table")
    predictions.set_defaults(handler=command_predictions)

    report = commands.add_parser("report", help="write the daily report for a session")
    _add_settings_flags(report, job=False)
    report.add_argument("--preset", help="seed or default (else FORECASTER_PRESET)")
    report.add_argument("--date", type=_date, help="the session forecast from (default: the latest)")
    report.add_argument(
        "--format", default="md", metavar="md|html|csv[,...]",
        help="one format or several, comma-separated (md,html,csv): the charts are drawn once for all (default md)",
    )
    report.add_argument(
        "--charts", type=int, metavar="N",
        help="chart the worst and best N tickers by skill and every failed one; all when at most 2N (default 5)",
    )
    report.add_argument("--out", help="directory (else FORECASTER_REPORT_DIR)")
    report.set_defaults(handler=command_report)

    status = commands.add_parser("status", help="last run, next run, failing tickers; exit 1 if unhealthy")
    _add_settings_flags(status, job=False)
    status.set_defaults(handler=command_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; the exit codes are forecaster.errors': 0 done, 1 failed, 2 bad input."""
    import sqlalchemy as sa

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as error:
        print(f"forecaster {args.command}: error: {redact(str(error))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except DatabaseUnavailable as error:
        print(f"forecaster {args.command}: database unavailable: {redact(str(error))}", file=sys.stderr)
        return EXIT_FAILURE
    except sa.exc.SQLAlchemyError as error:
        # A database that went away or is not migrated: one line, and the command failed.
        print(f"forecaster {args.command}: database error: {redact(one_line(error))}", file=sys.stderr)
        return EXIT_FAILURE
    except CycleInterrupted:
        print(f"forecaster {args.command}: stopped before the end", file=sys.stderr)
        return EXIT_FAILURE
