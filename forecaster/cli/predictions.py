"""`forecaster predictions`: the stored forecasts, with their interval and, once known, how they fared."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from forecaster.cli.common import settings_of
from forecaster.errors import EXIT_OK, UserError

if TYPE_CHECKING:
    import sqlalchemy as sa

#: Rows a table shows when --limit is not given (csv and json give every row).
TABLE_ROWS = 50

_COLUMNS = (  # (heading, width, cell)
    ("ticker", 8, lambda r: r["ticker"]),
    ("market", 6, lambda r: r["calendar"] or ""),
    ("made after", 10, lambda r: str(r["as_of"])),
    ("for", 10, lambda r: str(r["target_session"])),
    ("last", 9, lambda r: _number(r["last_close"])),
    ("forecast", 9, lambda r: _number(r["predicted_close"])),
    ("change", 7, lambda r: _percent(r["predicted_close"] / r["last_close"] - 1)),
    ("80 % interval", 18, lambda r: _band(r["lower_80"], r["upper_80"])),
    ("actual", 9, lambda r: _number(r["actual_close"])),
    ("error", 7, lambda r: "" if r["error"] is None else _percent(r["error"] / r["actual_close"])),
    ("naive", 7, lambda r: "" if r["naive_error"] is None else _percent(r["naive_error"] / r["actual_close"])),
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _percent(value: float) -> str:
    return f"{100 * value:+.2f}%"


def _band(lower: float | None, upper: float | None) -> str:
    return "" if lower is None or upper is None else f"{lower:.2f} .. {upper:.2f}"


def table(rows: list[dict[str, Any]], *, with_preset: bool) -> str:
    """A fixed-width table: text columns left-aligned, numbers right-aligned; about 110 characters."""
    columns = [("preset", 8, lambda r: r["preset"])] * with_preset + list(_COLUMNS)
    lines = [
        "  ".join(
            heading.ljust(width) if k <= with_preset + 3 else heading.rjust(width)
            for k, (heading, width, _) in enumerate(columns)
        )
    ]
    for row in rows:
        lines.append(
            "  ".join(
                cell(row).ljust(width) if k <= with_preset + 3 else cell(row).rjust(width)
                for k, (_, width, cell) in enumerate(columns)
            )
        )
    return "\n".join(line.rstrip() for line in lines)


def command_predictions(args: argparse.Namespace) -> int:
    from forecaster.store.accuracy import load_predictions
    from forecaster.store.database import opened_engine
    from forecaster.store.predictions import latest_as_of

    settings = settings_of(args)
    if args.latest and args.as_of:
        raise UserError("--latest and --as-of: give one of them")
    limit = args.limit if args.limit is not None else (TABLE_ROWS if args.format == "table" else 0)
    with opened_engine(settings.database, create=False) as engine, engine.connect() as connection:
        as_of = args.as_of
        if args.latest:
            as_of = latest_as_of(args.preset or settings.preset, connection=connection)
            if as_of is None:
                raise UserError(f"no forecasts of preset {args.preset or settings.preset!r} yet")
        frame = load_predictions(
            connection=connection,
            ticker=args.ticker,
            since=args.since,
            as_of=as_of,
            preset=args.preset or (settings.preset if args.latest else None),
            newest_first=True,
            limit=limit or None,
        )
        if frame.is_empty() and args.ticker and args.ticker not in settings.tickers:
            _refuse_unknown_ticker(args.ticker, settings.tickers, connection)
        if frame.is_empty() and args.preset:
            _refuse_unknown_preset(args.preset, connection)
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        print(json.dumps(frame.to_dicts(), default=str))
    elif frame.is_empty():
        print("no forecasts match", file=sys.stderr)
    else:
        print(table(frame.to_dicts(), with_preset=frame["preset"].n_unique() > 1))
        if limit and frame.height == limit:
            newest = "the newest row" if limit == 1 else f"the newest {limit} rows"
            print(f"({newest}; --limit N for more, --limit 0 for all)", file=sys.stderr)
    return EXIT_OK


def _refuse_unknown_ticker(ticker: str, watch_list: Sequence[str], connection: sa.Connection) -> None:
    """A ticker on no watch list and never forecast is a typo or a wrong database: exit 2, with the
    nearest names there are."""
    from forecaster.store.predictions import forecast_tickers

    known = forecast_tickers(connection=connection)
    if ticker in known:
        return
    nearest = difflib.get_close_matches(ticker, sorted(known | set(watch_list)), n=3, cutoff=0.5)
    hint = f" (nearest: {', '.join(nearest)})" if nearest else ""
    raise UserError(f"ticker {ticker} is not on the watch list and has no forecasts in this database{hint}")


def _refuse_unknown_preset(preset: str, connection: sa.Connection) -> None:
    """A preset that is not one of forecaster's and was never forecast is a typo: exit 2, with the
    nearest names."""
    from forecaster.model.presets import PRESETS
    from forecaster.store.predictions import forecast_presets

    known = forecast_presets(connection=connection) | set(PRESETS)
    if preset in known:
        return
    nearest = difflib.get_close_matches(preset, sorted(known), n=3, cutoff=0.5)
    hint = f" (nearest: {', '.join(nearest)})" if nearest else f" (presets: {', '.join(sorted(known))})"
    raise UserError(f"preset {preset!r} is not one of forecaster's and has no forecasts in this database{hint}")
