"""The price-source contract: every source returns one long polars frame plus per-ticker failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import polars as pl

#: The long price frame every source returns and the prices table stores, in this column order.
PRICE_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),
    "volume": pl.Float64(),
}


def empty_prices() -> pl.DataFrame:
    return pl.DataFrame(schema=PRICE_SCHEMA)


@dataclass
class FetchResult:
    """Prices for the tickers that succeeded, and a one-line reason for each that did not."""

    prices: pl.DataFrame = field(default_factory=empty_prices)
    failures: dict[str, str] = field(default_factory=dict)


class PriceSource(Protocol):
    """Where daily prices come from. `start` and `end` are both inclusive session dates."""

    name: str

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult: ...
