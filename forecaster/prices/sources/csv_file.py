"""Prices from a CSV file in any layout read_price_file accepts (the `csv:PATH` source)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from forecaster.prices.files import read_price_file
from forecaster.prices.sources.base import FetchResult


class CsvSource:
    """PriceSource over one price file, read on the first fetch and again only when the file changes.

    A ticker absent from the file is a failure; a ticker in the file with no rows in the
    asked range is not (it simply has nothing to add).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"csv:{path}"
        self._read: tuple[tuple[int, int], pl.DataFrame] | None = None

    def prices(self) -> pl.DataFrame:
        """Every row of the file, in PRICE_SCHEMA (a UserError if the file is bad)."""
        try:
            stat = self.path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            version = (0, 0)  # let read_price_file say what is wrong with the path
        if self._read is None or self._read[0] != version:
            self._read = (version, read_price_file(self.path))
        return self._read[1]

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        prices = self.prices()
        wanted = list(dict.fromkeys(tickers))
        available = set(prices["ticker"].unique())
        failures = {ticker: f"not in {self.path}" for ticker in wanted if ticker not in available}
        rows = prices.filter(pl.col("ticker").is_in(wanted) & pl.col("session_date").is_between(start, end))
        return FetchResult(prices=rows, failures=failures)
