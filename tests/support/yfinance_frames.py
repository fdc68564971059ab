"""Frames exactly as yfinance 1.x `download` returns them, built without the network.

`history` is one ticker's `Ticker.history()` frame (with its Dividends and Stock Splits columns,
as `download(actions=True)` asks for them), `failed_history` what yfinance keeps for a
ticker whose download failed, and `download_frame` the wide frame `download` assembles from them
(yfinance/multi.py): MultiIndex columns (Price, Ticker), the union of every ticker's dates, NaN
rows for a failed ticker, an empty frame when every ticker failed.
tests/prices/sources/test_yahoo.py checks them against yfinance's own assembly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def history(
    closes: dict[str, float],
    *,
    auto_adjust: bool = True,
    actions: bool = True,
    dividends: dict[str, float] | None = None,
    splits: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One ticker's `Ticker.history()` frame: midnight New York timestamps, prices around each close.

    With `actions` (what YahooSource asks `download` for) it ends with yfinance's "Dividends" and
    "Stock Splits" columns: the given `dividends` and `splits` on their dates (keys of `closes`),
    0.0 on every other day, as yfinance fills them."""
    index = pd.DatetimeIndex(list(closes), name="Date").tz_localize("America/New_York")
    close = np.array(list(closes.values()), dtype=float)
    frame = pd.DataFrame(
        {"Open": close - 0.5, "High": close + 1.0, "Low": close - 1.0, "Close": close},
        index=index,
    )
    if not auto_adjust:
        frame["Adj Close"] = close * 0.9
    frame["Volume"] = np.arange(1, len(close) + 1, dtype=np.int64) * 1000
    if actions:
        for column, events in (("Dividends", dividends or {}), ("Stock Splits", splits or {})):
            unknown = set(events) - set(closes)
            if unknown:
                raise ValueError(f"{column} on dates without a close: {sorted(unknown)}")
            frame[column] = [float(events.get(day, 0.0)) for day in closes]
    elif dividends or splits:
        raise ValueError("dividends and splits need actions=True")
    return frame


def failed_history() -> pd.DataFrame:
    """What yfinance keeps for a ticker whose download failed (yfinance.utils.empty_df)."""
    empty = pd.DataFrame(
        index=[],
        data={"Open": np.nan, "High": np.nan, "Low": np.nan, "Close": np.nan, "Adj Close": np.nan, "Volume": np.nan},
    )
    empty.index.name = "Date"
    return empty


def download_frame(histories: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """The frame `yfinance.download(group_by="column", multi_level_index=True)` builds from per-ticker
    histories (None = that ticker failed): daily index made tz-naive, every ticker reindexed to the
    union of dates, columns (Price, Ticker) sorted."""
    frames = {ticker.upper(): failed_history() if h is None else h.copy() for ticker, h in histories.items()}
    union = None
    for frame in frames.values():
        if not frame.empty:
            frame.index = frame.index.tz_localize(None)
            union = frame.index if union is None else union.union(frame.index)
    union = pd.DatetimeIndex([]) if union is None else union
    frames = {ticker: frame.reindex(union) for ticker, frame in frames.items()}
    data = pd.concat(frames.values(), axis=1, sort=True, keys=frames.keys(), names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)
