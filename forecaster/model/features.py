"""Lag windows: each target close y with the k closes before it, x_1 (the latest) first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from forecaster.errors import UserError


def lag_frame(closes: pl.DataFrame, lags: int) -> pl.DataFrame:
    """Adds x_1..x_k (the closes 1..k sessions before) to a (ticker, session_date, close)
    frame sorted by ticker and date, keeping only rows with all k lags: the notebook's
    `shift(1..4)` then `data[4:]`, per ticker."""
    return (
        closes.select("ticker", "session_date", pl.col("close").alias("y"))
        .with_columns(pl.col("y").shift(j).over("ticker").alias(f"x_{j}") for j in range(1, lags + 1))
        .drop_nulls([f"x_{j}" for j in range(1, lags + 1)])
    )


@dataclass
class TrainingWindows:
    """Training samples for many tickers, right-aligned on the latest session.

    A ticker with fewer samples than the widest is padded at the front; `first[k]` is
    the index of its first real sample.
    """

    tickers: list[str]
    x: np.ndarray  # (tickers, samples, lags), x_1 first
    y: np.ndarray  # (tickers, samples)
    first: np.ndarray  # (tickers,)
    latest_lags: np.ndarray  # (tickers, lags): the inputs that predict the next session, x_1 = latest close


def training_windows(closes: pl.DataFrame, *, lags: int, window: int) -> TrainingWindows:
    """The last `window` lag samples of each ticker, plus the lags that predict the next close.

    `closes` holds (ticker, session_date, close) sorted by ticker and date. A ticker
    needs at least lags + 1 closes; fewer is a UserError naming it.
    """
    counts = closes.group_by("ticker", maintain_order=True).len()
    short = counts.filter(pl.col("len") < lags + 1)
    if short.height:
        ticker, count = short.row(0)
        raise UserError(f"{ticker}: {count} closes, need at least {lags + 1} for {lags} lags")
    tickers = counts["ticker"].to_list()
    n_samples = min(window, int(counts["len"].to_numpy().max()) - lags)
    index = pl.DataFrame({"ticker": tickers, "k": np.arange(len(tickers))})
    samples = (
        lag_frame(closes, lags)
        .group_by("ticker", maintain_order=True)
        .tail(window)
        .join(index, on="ticker")
        .with_columns(  # right-align: a ticker's last sample goes to the last slot
            (n_samples - pl.len().over("ticker") + pl.int_range(pl.len()).over("ticker")).alias("slot")
        )
    )
    k, slot = samples["k"].to_numpy(), samples["slot"].to_numpy()
    x = np.zeros((len(tickers), n_samples, lags))
    y = np.zeros((len(tickers), n_samples))
    x[k, slot] = samples.select(f"x_{j}" for j in range(1, lags + 1)).to_numpy()
    y[k, slot] = samples["y"].to_numpy()
    first = n_samples - samples.group_by("k").len().sort("k")["len"].to_numpy().astype(np.int64)
    latest = closes.group_by("ticker", maintain_order=True).agg(pl.col("close").tail(lags).reverse())
    latest_lags = np.array(latest["close"].to_list(), dtype=np.float64).reshape(len(tickers), lags)
    return TrainingWindows(tickers=tickers, x=x, y=y, first=first, latest_lags=latest_lags)
