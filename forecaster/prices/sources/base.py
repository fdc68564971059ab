"""The price-source contract: every source returns one long price frame plus per-ticker failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import polars as pl

from forecaster.price_frame import empty_prices


@dataclass
class FetchResult:
    """Prices for the tickers that succeeded (forecaster.price_frame.SOURCE_SCHEMA), and a
    one-line reason for each that did not."""

    prices: pl.DataFrame = field(default_factory=empty_prices)
    failures: dict[str, str] = field(default_factory=dict)


class PriceSource(Protocol):
    """Where daily prices come from. `start` and `end` are both inclusive session dates."""

    name: str

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult: ...
