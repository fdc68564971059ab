"""Read a daily price CSV into the long price frame (forecaster.price_frame), or fail with one line naming the file.

Three layouts are recognised from the header:

- yfinance, one ticker: ``Date,Close,High,Low,Open,Volume`` (any order, maybe ``Adj Close``,
  ``Dividends`` and ``Stock Splits``, as ``Ticker.history().to_csv()`` writes them); the ticker
  is the ``ticker`` argument, else the file name's stem upper-cased.
- long: ``date,ticker,close[,open,high,low,adj_close,volume,dividends,stock_splits]``.
- ``yf.download(...).to_csv()`` with MultiIndex columns: a ``Price,...`` line, a ``Ticker,...``
  line (or the two swapped, for ``group_by="ticker"``), then usually a ``Date,,,`` line; one
  or many tickers, named by the file, with Dividends and Stock Splits fields too when downloaded
  with ``actions=True``. An empty cell there means the ticker has no row that day.

Column names are case-insensitive; ``_`` and spaces in them are ignored. Dividends and stock
splits are the price frame's corporate actions (forecaster.price_frame.ACTION_SCHEMA): the cash
dividend going ex that day and the split ratio, 0 or empty on other days. Every optional column,
actions included, must be numeric where it is not empty (else a UserError naming the file, the
line and the column). Other columns (Capital Gains, ...) are ignored. Dates are the calendar date
as written: ``2023-01-03``, ``2023-01-03 00:00:00`` and ``2023-01-03 00:00:00-05:00`` all mean
2023-01-03 (the session date, whatever the offset). Dates are not checked against the trading
calendar (the seed notebook's own prices include a Saturday).
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import polars as pl

from forecaster.errors import UserError
from forecaster.price_frame import OPTIONAL_COLUMNS, conform
from forecaster.tickers import MAX_LENGTH as MAX_TICKER_LENGTH
from forecaster.tickers import PATTERN as TICKER_PATTERN

#: Header names (lower-cased, without "_" and spaces) and the price-frame column each means.
_ALIASES = {
    "date": "session_date",
    "sessiondate": "session_date",
    "datetime": "session_date",
    "ticker": "ticker",
    "symbol": "ticker",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "volume": "volume",
    "dividends": "dividends",
    "stocksplits": "stock_splits",
}
_LINE = "_line"  # the 1-based line number of each data row, for error messages
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}(?:[ T].*)?$"


def read_price_file(path: str | Path, *, ticker: str | None = None) -> pl.DataFrame:
    """The file's prices as a price frame, sorted by (ticker, session_date).

    `ticker` names the series of a one-ticker yfinance file; in a file that names its
    tickers (long or MultiIndex layout) it selects that ticker's rows.
    """
    path = Path(path)
    header = _first_rows(path, 3)
    first_cells = [_canonical_name(row[0]) if row else "" for row in header]
    if len(header) >= 2 and {first_cells[0], first_cells[1]} == {"price", "ticker"}:
        raw = _read_multiindex(path, header, first_cells)
        names_tickers = True
    else:
        raw = _read_flat(path)
        names_tickers = "ticker" in raw.columns
        if not names_tickers:
            raw = raw.with_columns(pl.lit(ticker or path.stem.upper()).alias("ticker"))
    prices = _validated(raw, path)
    if ticker is not None and names_tickers:
        prices = _only_ticker(prices, ticker, path)
    return prices


def _canonical_name(name: str) -> str:
    return name.strip().lstrip("\ufeff").lower().replace("_", "").replace(" ", "")


def _first_rows(path: Path, count: int) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(itertools.islice(csv.reader(handle), count))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a price file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: cannot read ({_one_line(error)})") from None
    if not any(any(cell.strip() for cell in row) for row in rows):
        raise UserError(f"{path}: empty file")
    return rows


def _read_csv(path: Path, **options: Any) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema=False, raise_if_empty=False, **options)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise UserError(f"{path}: not a readable CSV ({_one_line(error)})") from None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:200] or type(error).__name__


def _rename(columns: list[str], path: Path) -> dict[str, str]:
    """Maps each recognised header name to its price-frame column; rejects a meaning given twice."""
    renames: dict[str, str] = {}
    for name in columns:
        target = _ALIASES.get(_canonical_name(name))
        if target is None:
            continue
        if target in renames.values():
            other = next(k for k, v in renames.items() if v == target)
            raise UserError(f"{path}: columns {other!r} and {name!r} both hold {target}")
        renames[name] = target
    missing = [what for what in ("session_date", "close") if what not in renames.values()]
    if missing:
        what = "date" if missing[0] == "session_date" else "close"
        raise UserError(f"{path}: no {what} column (found columns: {', '.join(columns)})")
    return renames


def _read_flat(path: Path) -> pl.DataFrame:
    """A one-line-header file (yfinance one-ticker or long layout), columns renamed to the price frame's."""
    frame = _read_csv(path, row_index_name=_LINE, row_index_offset=2)
    renames = _rename([c for c in frame.columns if c != _LINE], path)
    return frame.select(pl.col(_LINE), *(pl.col(name).alias(target) for name, target in renames.items()))


def _read_multiindex(path: Path, header: list[list[str]], first_cells: list[str]) -> pl.DataFrame:
    """The `yf.download(...).to_csv()` layout: one (field, ticker) pair per column, unpivoted to long rows."""
    fields_row, tickers_row = (header[0], header[1]) if first_cells[0] == "price" else (header[1], header[0])
    header_lines = 3 if len(header) == 3 and _ALIASES.get(first_cells[2]) == "session_date" else 2
    columns = [f"column_{i}" for i in range(len(fields_row))]
    frame = _read_csv(
        path,
        has_header=False,
        skip_rows=header_lines,
        new_columns=columns,
        row_index_name=_LINE,
        row_index_offset=header_lines + 1,
    )
    by_ticker: dict[str, dict[str, str]] = {}
    for column, field, name in zip(columns[1:], fields_row[1:], tickers_row[1:], strict=False):
        target = _ALIASES.get(_canonical_name(field))
        if target is not None and target not in ("ticker", "session_date"):
            by_ticker.setdefault(name.strip(), {})[target] = column
    without_close = [name for name, fields in by_ticker.items() if "close" not in fields]
    if not by_ticker or without_close:
        found = sorted({field.strip() for field in fields_row[1:]})
        which = ", ".join(without_close) or "any ticker"
        raise UserError(f"{path}: no close column for {which} (found fields: {', '.join(found)})")
    parts = [
        frame.select(
            pl.col(_LINE),
            pl.col(columns[0]).alias("session_date"),
            pl.lit(name).alias("ticker"),
            *(pl.col(column).alias(target) for target, column in fields.items()),
        ).filter(pl.col("close").is_not_null())  # an empty cell: no row for this ticker that day
        for name, fields in by_ticker.items()
    ]
    return pl.concat(parts, how="diagonal")


def _validated(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Parses and checks every column; the first bad row raises a UserError with its line number."""
    if raw.height == 0:
        raise UserError(f"{path}: no data rows")
    text = {name: pl.col(name).str.strip_chars() for name in raw.columns if name != _LINE}
    numbers = [name for name in ("close", *OPTIONAL_COLUMNS) if name in raw.columns]
    date_text = text["session_date"]
    parsed = raw.with_columns(
        pl.when(date_text.str.contains(_DATE_PATTERN))
        .then(date_text.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False))
        .alias("session_date"),
        text["ticker"].str.to_uppercase().alias("ticker"),
        *(text[name].cast(pl.Float64, strict=False).alias(name) for name in numbers),
    )

    def fail_on(column: str, bad: pl.Expr, message: str) -> None:
        """Raises for the first row where `bad` holds; in `bad`, "raw" is the column's text as read."""
        rows = parsed.with_columns(raw[column].alias("raw")).filter(bad)
        if rows.height:
            raise UserError(f"{path}: line {rows[_LINE][0]}: {message.format(value=rows['raw'][0])}")

    as_read = pl.col("raw")
    fail_on("ticker", as_read.is_null() | (pl.col("ticker") == ""), "missing ticker")
    fail_on(
        "ticker",
        ~pl.col("ticker").str.contains(TICKER_PATTERN),
        f"ticker {{value!r}} is not a symbol (letters, digits and . - ^ = _, at most {MAX_TICKER_LENGTH} characters)",
    )
    fail_on("session_date", as_read.is_null(), "missing date")
    fail_on("session_date", pl.col("session_date").is_null(), "unparseable date {value!r} (expected YYYY-MM-DD)")
    fail_on("close", as_read.is_null(), "missing close")
    fail_on("close", pl.col("close").is_null(), "non-numeric close {value!r}")
    close_ok = pl.col("close").is_finite() & (pl.col("close") > 0)
    fail_on("close", ~close_ok, "close must be positive and finite, got {value!r}")
    for name in OPTIONAL_COLUMNS:
        if name in raw.columns:
            fail_on(name, as_read.is_not_null() & pl.col(name).is_null(), f"non-numeric {name} {{value!r}}")

    duplicated = parsed.filter(pl.struct("ticker", "session_date").is_duplicated())
    if duplicated.height:
        first = duplicated.sort(_LINE).row(0, named=True)
        same = (pl.col("ticker") == first["ticker"]) & (pl.col("session_date") == first["session_date"])
        lines = ", ".join(map(str, duplicated.filter(same)[_LINE].sort()))
        raise UserError(f"{path}: {first['ticker']} {first['session_date']} appears more than once (lines {lines})")

    present = [name for name in OPTIONAL_COLUMNS if name in parsed.columns]
    return conform(parsed.with_columns(pl.col(name).fill_nan(None) for name in present)).sort("ticker", "session_date")


def _only_ticker(prices: pl.DataFrame, ticker: str, path: Path) -> pl.DataFrame:
    selected = prices.filter(pl.col("ticker") == ticker.strip().upper())
    if selected.height == 0:
        available = prices["ticker"].unique().sort().to_list()
        shown = ", ".join(available[:5]) + (f", ... ({len(available)} tickers)" if len(available) > 5 else "")
        raise UserError(f"{path}: ticker {ticker!r} not in the file (it has {shown})")
    return selected
