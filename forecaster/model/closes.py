"""The closes a forecast step works on: each ticker's latest closes as one right-aligned array.

A cycle loads a chunk's closes once, as this matrix; the lag windows, the volatility and the
interval inputs are all derived from it (forecaster.model.features, forecaster.model.step), so
every part of the step sees the same closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl


@dataclass(frozen=True)
class ClosesMatrix:
    """Row k holds ticker k's latest closes, oldest first, its latest close in the last column;
    a ticker with fewer closes than the width has NaN (and NaT dates) in front."""

    tickers: list[str]
    closes: np.ndarray  # (tickers, width) float64
    dates: np.ndarray  # (tickers, width) datetime64[D]

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, tickers: Sequence[str], width: int) -> ClosesMatrix:
        """From a (ticker, session_date, close) frame: each of `tickers`' last `width` closes
        (a ticker absent from the frame gets an empty row)."""
        closes = np.full((len(tickers), width), np.nan)
        dates = np.full((len(tickers), width), np.datetime64("NaT"), dtype="datetime64[D]")
        index = pl.DataFrame(
            {"ticker": list(tickers), "k": np.arange(len(tickers))}, schema={"ticker": pl.String, "k": pl.Int64}
        )
        recent = (
            frame.select("ticker", "session_date", "close")
            .join(index, on="ticker")
            .sort("k", "session_date")
            .group_by("k", maintain_order=True)
            .tail(width)
            .with_columns((width - pl.len().over("k") + pl.int_range(pl.len()).over("k")).alias("slot"))
        )
        k, slot = recent["k"].to_numpy(), recent["slot"].to_numpy()
        closes[k, slot] = recent["close"].to_numpy()
        dates[k, slot] = recent["session_date"].to_numpy().astype("datetime64[D]")
        return cls(list(tickers), closes, dates)

    @property
    def width(self) -> int:
        return int(self.closes.shape[1])

    @property
    def counts(self) -> np.ndarray:
        """(tickers,): how many closes each row holds."""
        return np.isfinite(self.closes).sum(axis=1)

    @property
    def last_close(self) -> np.ndarray:
        """(tickers,): the close each forecast is made from (NaN for an empty row)."""
        return self.closes[:, -1]

    def last_dates(self) -> list[date | None]:
        """Each row's latest session, None for an empty row."""
        return [None if np.isnat(d) else d.item() for d in self.dates[:, -1]]

    def rows(self, tickers: Sequence[str]) -> ClosesMatrix:
        """The rows of `tickers`, in that order."""
        position = {ticker: k for k, ticker in enumerate(self.tickers)}
        taken = [position[ticker] for ticker in tickers]
        return ClosesMatrix(list(tickers), self.closes[taken], self.dates[taken])

    def close_on(self, sessions: Sequence[date | None]) -> np.ndarray:
        """(tickers,): each row's close on its session of `sessions`, NaN where it has none."""
        wanted = np.array([np.datetime64("NaT") if d is None else d for d in sessions], dtype="datetime64[D]")
        hits = self.dates == wanted[:, None]  # (tickers, width); NaT never equals
        found = hits.any(axis=1)
        column = hits.argmax(axis=1)
        return np.where(found, self.closes[np.arange(len(self.tickers)), column], np.nan)
