"""The command line's grammar: every command with a paragraph saying what it does, every flag
with its format and default."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from forecaster.cli.commands import (
    command_backfill,
    command_db_prune,
    command_db_size,
    command_db_upgrade,
    command_report,
    command_run,
    command_status,
)
from forecaster.cli.common import MAX_COUNT, MAX_EPOCHS, iso_date, whole_number
from forecaster.cli.fit import command_fit
from forecaster.cli.predictions import TABLE_ROWS, command_predictions

DESCRIPTION = """\
A scheduled forecasting job for daily market data. Every NYSE trading day after the close it
fetches closes (yfinance), retrains one tiny LSTM per ticker with a warm start from yesterday,
forecasts the next close with 80 % and 95 % intervals, and writes forecasts, losses and run
records to SQLite or PostgreSQL. Settings come from FORECASTER_* variables (see the README);
the flags below override them. Exit codes: 0 done, 1 failed, 2 bad input."""

EPILOG = "`forecaster COMMAND --help` describes each command."

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _version() -> str:
    try:
        return version("forecaster")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from forecaster import __version__

        return __version__


def _add_database_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file (default: FORECASTER_CONFIG_FILE, else none)"
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE (default: FORECASTER_DATABASE_URL, else sqlite:///forecaster.db)",
    )


def _add_job_flags(parser: argparse.ArgumentParser) -> None:
    _add_database_flags(parser)
    parser.add_argument(
        "--source",
        metavar="SPEC",
        help="where prices come from: yahoo, csv:PATH or synthetic[:SEED] (default: FORECASTER_SOURCE, else yahoo)",
    )
    parser.add_argument(
        "--tickers",
        metavar="LIST",
        help="comma-separated watch list, e.g. SPY,QQQ,BRK-B (default: FORECASTER_TICKERS, else SPY,QQQ,IWM)",
    )
    parser.add_argument("--preset", metavar="NAME", help="default or seed (default: FORECASTER_PRESET, else default)")


def _db_action(
    actions: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    handler: Callable[[argparse.Namespace], int],
) -> None:
    """A `forecaster db` action: its help, its paragraph, the database flags and its handler."""
    action = actions.add_parser(name, help=summary, formatter_class=_FORMATTER, description=description)
    _add_database_flags(action)
    _add_loudness_flags(action)
    action.set_defaults(handler=handler)


def _command(
    commands: argparse._SubParsersAction, name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    command = commands.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{description}",
        formatter_class=_FORMATTER,
    )
    _add_loudness_flags(command)
    return command


def _add_loudness_flags(parser: argparse.ArgumentParser) -> None:
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="log only warnings and errors, and show no progress bar"
    )
    loudness.add_argument("-v", "--verbose", action="store_true", help="log debug lines too")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecaster", description=DESCRIPTION, epilog=EPILOG, formatter_class=_FORMATTER
    )
    parser.add_argument("--version", action="version", version=f"forecaster {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        commands,
        "run",
        "the daemon: catch up, then forecast after every close",
        """\
Applies the migrations, catches up every session a ticker of the watch list still owes a
forecast from, then forecasts on FORECASTER_SCHEDULE and writes the report on
FORECASTER_REPORT_SCHEDULE until SIGTERM or SIGINT (it finishes the ticker chunk in flight and
exits 0). Several `run` processes on one PostgreSQL share the work; one of them schedules.
With --once: catch up through the latest session whose close has passed (or --as-of), then
exit (0 done, 1 stopped or failed).""",
    )
    _add_job_flags(run)
    run.add_argument("--once", action="store_true", help="catch up once, then exit (default: run until stopped)")
    run.add_argument(
        "--as-of",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="with --once: the last session to forecast from (default: the latest whose close has passed)",
    )
    run.set_defaults(handler=command_run)

    backfill = _command(
        commands,
        "backfill",
        "forecast every session of a past period (the backtest)",
        """\
Walks the same daily cycle as the daemon over every NYSE session from START to END, for every
ticker of the watch list, after one fetch of the prices it needs: each forecast is made from
prices through its session only, warm-started from the session before. Sessions already
forecast are skipped, so it can be run again or resumed after a stop.""",
    )
    _add_job_flags(backfill)
    backfill.add_argument(
        "--start", type=iso_date, required=True, metavar="YYYY-MM-DD", help="first session to forecast from"
    )
    backfill.add_argument(
        "--end", type=iso_date, required=True, metavar="YYYY-MM-DD", help="last session to forecast from"
    )
    backfill.set_defaults(handler=command_backfill)

    predictions = _command(
        commands,
        "predictions",
        "list stored forecasts, newest first",
        """\
Each forecast with the session it was made after, the session it is for, its 80 % interval and,
once that close is known, the actual close and the errors of the forecast and of the naive
forecast (the last close) in percent. csv and json give every column of the
prediction_accuracy view.""",
    )
    _add_database_flags(predictions)
    predictions.add_argument("--ticker", type=str.upper, metavar="TICKER", help="only this ticker (default: all)")
    predictions.add_argument(
        "--preset", metavar="NAME", help="only this preset (default: all; with --latest: FORECASTER_PRESET)"
    )
    predictions.add_argument("--latest", action="store_true", help="only the forecasts made after the latest session")
    predictions.add_argument(
        "--as-of",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="only the forecasts made after this session (default: every session)",
    )
    predictions.add_argument(
        "--since",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="only forecasts for this session or later (default: every session)",
    )
    predictions.add_argument(
        "--limit",
        type=whole_number(0, MAX_COUNT),
        metavar="N",
        help=f"at most N rows, 0 for all (default: {TABLE_ROWS} for the table, all for csv and json)",
    )
    predictions.add_argument("--format", choices=("table", "csv", "json"), default="table", help="(default: table)")
    predictions.set_defaults(handler=command_predictions)

    report = _command(
        commands,
        "report",
        "write the daily report of a session",
        """\
Writes report-YYYY-MM-DD.{md,html,csv} for the session forecast from: a briefing (the headline
numbers beside their targets, flagged only beyond chance, and what changed), a summary, every
ticker's forecast with its interval, accuracy over the last 20 and 60 realised forecasts next
to the naive forecast's, interval coverage, the runs of that session with their failures, and
charts (one of skill over time, one per ticker for the tickers named, and N each of the failed,
the flagged, the biggest predicted moves, the worst and the best). The HTML is one file with
its charts inline; the markdown refers to PNGs beside it and to the CSV, written with it.""",
    )
    _add_database_flags(report)
    report.add_argument("--preset", metavar="NAME", help="default or seed (default: FORECASTER_PRESET, else default)")
    report.add_argument(
        "--date", type=iso_date, metavar="YYYY-MM-DD", help="the session forecast from (default: the latest)"
    )
    report.add_argument(
        "--format",
        default="md",
        metavar="md|html|csv[,...]",
        help="one format or several, comma-separated: the charts are drawn once for all (default: md)",
    )
    report.add_argument(
        "--charts",
        type=whole_number(0, MAX_COUNT),
        metavar="N",
        help="chart N tickers of each group (failed, flagged, biggest moves, worst, best), 30 at most; all when "
        "at most 2N (default: 5)",
    )
    report.add_argument(
        "--chart",
        metavar="LIST",
        help="comma-separated tickers to chart always, e.g. SPY,QQQ (default: FORECASTER_REPORT_CHARTS, else none)",
    )
    report.add_argument(
        "--out", metavar="DIR", help="directory to write into (default: FORECASTER_REPORT_DIR, else reports)"
    )
    report.set_defaults(handler=command_report)

    status = _command(
        commands,
        "status",
        "say whether the job is healthy",
        """\
Prints the last run and its outcome, the latest session forecast from, the next scheduled run
and the failing tickers. Exits 1 when nothing has run yet, when the last run failed or was
interrupted, or when the forecast from the latest scheduled session is overdue (missing past
FORECASTER_MISFIRE_GRACE_SECONDS); the container's health check runs it. On a database filled
by a backfill of past sessions it says OVERDUE and exits 1: no forecast from today's session.
With --process it answers for one daemon process instead (a worker's health check): is its
heartbeat file (FORECASTER_HEARTBEAT_FILE) fresh, and did it reach the database.""",
    )
    _add_database_flags(status)
    status.add_argument(
        "--process",
        action="store_true",
        help="the health of the daemon process beating into FORECASTER_HEARTBEAT_FILE, not the job's",
    )
    status.add_argument(
        "--json",
        action="store_true",
        help="the same facts as one JSON object, times in UTC (default: lines of text, times in UTC)",
    )
    status.set_defaults(handler=command_status)

    fit = _command(
        commands,
        "fit",
        "train a preset on a price file and print the forecast (no database)",
        """\
Trains the preset's first fit on the last 252 samples of each ticker in the file and prints
the final training loss, the next-close forecast with its 80 % and 95 % intervals (from the
file's own volatility-scaled returns) and the 12 weights. The seed preset reproduces the
notebook exactly. Reads the yfinance CSV layout (Date,Close,...) or the long layout
(date,ticker,close[,open,high,low,adj_close,volume]).""",
    )
    fit.add_argument(
        "--preset", default="seed", metavar="NAME", help="seed (the notebook exactly) or default (default: seed)"
    )
    fit.add_argument("--prices", required=True, metavar="FILE", help="CSV price file, either layout")
    fit.add_argument("--ticker", metavar="TICKER", help="only this ticker of a file with several (default: all)")
    fit.add_argument(
        "--epochs",
        type=whole_number(1, MAX_EPOCHS),
        metavar="N",
        help=f"training epochs, 1 to {MAX_EPOCHS:,} (default: the preset's first fit)",
    )
    fit.add_argument(
        "--init-params", metavar="FILE", help="JSON object of the 12 named starting weights (default: the notebook's)"
    )
    fit.add_argument(
        "--losses-csv", metavar="FILE", help="write each epoch's mean batch loss here (default: not written)"
    )
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    fit.set_defaults(handler=command_fit)

    db = _command(
        commands,
        "db",
        "manage the database: its schema, its retention, its size",
        """\
`forecaster db upgrade` applies the migrations. The daemon, run --once and backfill apply them
at every start too, so this is needed only to prepare a database before anything else runs.
`forecaster db prune` deletes the model states and loss curves beyond those kept; `forecaster
db size` says how much each table takes.""",
    )
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    _db_action(
        db_commands,
        "upgrade",
        "apply the migrations up to the latest",
        "Apply the migrations up to the latest.\n\nCreates a SQLite file if there is none. "
        "The daemon does this at every start; several processes may run it at once.",
        command_db_upgrade,
    )
    _db_action(
        db_commands,
        "prune",
        "delete the model states and loss curves beyond those kept",
        """\
Delete, for every ticker, the model states beyond its latest FORECASTER_KEEP_STATES and the
per-epoch loss curves beyond its latest FORECASTER_KEEP_LOSS_CURVES fits. Forecasts (with each
fit's epochs and first and last loss), prices, runs and failures are kept.

Each cycle already prunes the tickers it forecasts; this does the whole database at once: the
tickers that left the watch list, and a database written before retention. It takes the
scheduler lock, so it is refused while a daemon or a backfill runs. SQLite reuses the freed
pages; to give them back to the file system, run VACUUM with the daemon stopped.""",
        command_db_prune,
    )
    _db_action(
        db_commands,
        "size",
        "rows and bytes of every table",
        """\
Rows and bytes of every table (its indexes included), largest first, and the bytes per forecast
(a ticker-session): SQLite's dbstat table, PostgreSQL's pg_total_relation_size. Read only.""",
        command_db_size,
    )
    return parser
