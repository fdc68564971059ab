"""The commands on the database: `db upgrade`, `db prune`, `db size`, `run`, `backfill`, `report` and `status`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from forecaster.cli.common import settings_of, writable_directory
from forecaster.errors import EXIT_FAILURE, EXIT_OK, CycleInterrupted, UserError

log = logging.getLogger("forecaster.cli")

_STOPPED = "stopped before the end; run the same command again to complete it"


def command_db_upgrade(args: argparse.Namespace) -> int:
    from forecaster.daemon.leadership import Leadership
    from forecaster.store.database import current_revision, opened_engine, upgrade

    with opened_engine(settings_of(args).database) as engine:
        leadership = Leadership(engine, role="forecaster db upgrade")
        if leadership.single_process:  # SQLite: not under a running writer
            leadership.acquire_or_refuse()
        try:
            upgrade(engine)
            print(f"database at revision {current_revision(engine)}")
        finally:
            leadership.release()
    return EXIT_OK


def command_db_prune(args: argparse.Namespace) -> int:
    from forecaster.daemon.leadership import Leadership
    from forecaster.store.database import opened_engine, upgrade
    from forecaster.store.retention import Retention, prune_database

    settings = settings_of(args)
    retention = Retention(states=settings.keep_states, loss_curves=settings.keep_loss_curves)
    with opened_engine(settings.database, create=False) as engine:
        # A backfill's states of an earlier period are newer in its walk than in the table: only
        # with the scheduler lock is no walk relying on a state that is not among the latest.
        leadership = Leadership(engine, role="forecaster db prune")
        if leadership.single_process:
            leadership.acquire_or_refuse()
        try:
            upgrade(engine)  # the fits' summaries move onto their forecasts before any curve goes
            if not leadership.single_process:  # the lease is a row of a migrated table
                leadership.acquire_or_refuse()
            with engine.begin() as connection:
                pruned = prune_database(retention, connection=connection)
        finally:
            leadership.release()
    print(
        f"deleted {pruned.states} model states and {pruned.loss_rows} loss rows; kept per ticker the latest "
        f"{retention.states} states and {retention.loss_curves} loss curves (FORECASTER_KEEP_STATES, "
        "FORECASTER_KEEP_LOSS_CURVES)"
    )
    return EXIT_OK


def command_db_size(args: argparse.Namespace) -> int:
    from forecaster.store.database import opened_engine
    from forecaster.store.sizes import table_sizes

    with opened_engine(settings_of(args).database, create=False) as engine, engine.connect() as connection:
        sizes = table_sizes(connection)
    forecasts = next(size.rows for size in sizes if size.table == "predictions")
    print(f"{'table':<16} {'rows':>12} {'MB':>10} {'bytes/row':>10}")
    for size in sizes:
        megabytes = "?" if size.bytes is None else f"{size.bytes / 1e6:.1f}"
        per_row = "" if size.bytes is None or not size.rows else f"{size.bytes / size.rows:.0f}"
        print(f"{size.table:<16} {size.rows:>12} {megabytes:>10} {per_row:>10}")
    if all(size.bytes is not None for size in sizes):
        total = sum(size.bytes or 0 for size in sizes)
        per_forecast = f"; {total / forecasts:.0f} bytes per forecast (ticker-session)" if forecasts else ""
        print(f"{'total':<16} {sum(size.rows for size in sizes):>12} {total / 1e6:>10.1f}{per_forecast}")
    else:
        print("this SQLite build has no dbstat table: sizes unknown, rows counted")
    return EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    from forecaster import app

    settings = settings_of(args)
    if args.as_of and not args.once:
        raise UserError("--as-of: only with --once")
    if not args.once:
        from forecaster.daemon.heartbeat import check_writable

        # Said now, with exit 2, rather than at the first report or as a stale heartbeat.
        writable_directory(Path(settings.report_dir), setting="FORECASTER_REPORT_DIR")
        if settings.heartbeat_file:
            check_writable(settings.heartbeat_file)
        app.run_daemon(settings)
        return EXIT_OK
    try:
        outcomes = app.run_once(settings, through=args.as_of)
    except CycleInterrupted:
        log.warning(_STOPPED)
        return EXIT_FAILURE
    return EXIT_OK if outcomes[-1].status in ("ok", "partial") else EXIT_FAILURE


def command_backfill(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from forecaster import app
    from forecaster.cycle import CycleOutcome
    from forecaster.walks import sessions_to_walk

    if args.end < args.start:
        raise UserError(f"--end {args.end} is before --start {args.start}")
    settings = settings_of(args)
    markets = list(dict.fromkeys(settings.markets.values()))
    sessions = sessions_to_walk(markets, args.start, args.end)
    if not sessions:
        raise UserError(f"no session of {', '.join(markets)} between {args.start} and {args.end}")
    # A progress bar on a terminal only (in a container's log it would be noise), with the log
    # lines written above it instead of through it.
    bar_shown = sys.stderr.isatty() and not args.quiet
    with (
        tqdm(total=sessions, unit="session", file=sys.stderr, disable=not bar_shown) as bar,
        logging_redirect_tqdm() if bar_shown else nullcontext(),
    ):

        def advance(outcome: CycleOutcome) -> None:
            bar.set_postfix_str(str(outcome.as_of), refresh=False)
            bar.update()

        try:
            outcomes = app.run_backfill(settings, args.start, args.end, on_cycle=advance)
        except CycleInterrupted:
            log.warning(_STOPPED)
            return EXIT_FAILURE
    failed = sum(1 for outcome in outcomes if outcome.status == "failed")
    print(
        f"backfill {args.start} .. {args.end}: {len(outcomes)} sessions, "
        f"{sum(o.tickers_ok for o in outcomes)} forecasts written, "
        f"{sum(o.tickers_skipped for o in outcomes)} already there or not owed, "
        f"{sum(o.tickers_waiting for o in outcomes)} waiting for a close (run it again once published), "
        f"{sum(o.tickers_failed for o in outcomes)} ticker failures, {failed} failed sessions"
    )
    return EXIT_FAILURE if failed == len(outcomes) else EXIT_OK


def command_report(args: argparse.Namespace) -> int:
    from forecaster.report.data import DEFAULT_PER_END
    from forecaster.report.writer import write_reports
    from forecaster.store.database import opened_engine

    settings = settings_of(args)
    out_dir = writable_directory(Path(args.out or settings.report_dir))
    with opened_engine(settings.database, create=False) as engine:
        try:
            paths = write_reports(
                engine,
                as_of=args.date,
                preset=settings.preset,
                formats=[fmt.strip() for fmt in args.format.split(",")],
                out_dir=out_dir,
                charts=DEFAULT_PER_END if args.charts is None else args.charts,
                delisted_after=settings.delisted_after_sessions,
                named=settings.with_overrides(report_charts=args.chart).report_charts,
            )
        except OSError as error:  # a full disk, say: matplotlib's and polars' errors name no file
            if error.filename is not None:
                raise
            raise OSError(error.errno, error.strerror, str(out_dir)) from None
    print("\n".join(str(path) for path in paths))
    return EXIT_OK


def command_status(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if args.process:
        from forecaster.daemon.heartbeat import check_process

        if not settings.heartbeat_file:
            raise UserError("status --process: set FORECASTER_HEARTBEAT_FILE (the file the daemon beats into)")
        process = check_process(settings.heartbeat_file, datetime.now(UTC))
        print(json.dumps({"healthy": process.healthy, "process": process.line}) if args.json else process.line)
        return EXIT_OK if process.healthy else EXIT_FAILURE

    from forecaster.daemon.health import check_health
    from forecaster.store.database import opened_engine

    with opened_engine(settings.database, create=False) as engine:
        health = check_health(engine, settings, datetime.now(UTC))
    print(health.json() if args.json else "\n".join(health.lines))
    return EXIT_OK if health.healthy else EXIT_FAILURE
