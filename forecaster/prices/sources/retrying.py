"""Retries a source's failed tickers with exponential backoff, a bounded number of times."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import date

import polars as pl

from forecaster.prices.sources.base import FetchResult, PriceSource

log = logging.getLogger(__name__)


class RetryingSource:
    """Wraps a PriceSource: tickers that fail are fetched again after 1, 2, 4… × `backoff_seconds`,
    up to `retries` more times; a stop request ends the waiting early. What still fails is returned
    as failed, for the run to record and the next cycle to retry."""

    def __init__(self, source: PriceSource, *, retries: int, backoff_seconds: float, stop: threading.Event) -> None:
        self.source = source
        self.name = source.name
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.stop = stop

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        result = self.source.fetch(tickers, start, end)
        frames = [result.prices]
        failures = dict(result.failures)
        for attempt in range(1, self.retries + 1):
            if not failures:
                break
            delay = self.backoff_seconds * 2 ** (attempt - 1)
            log.info("fetch failed for %d ticker(s); retry %d of %d in %.1f s", len(failures), attempt, self.retries, delay)
            if self.stop.wait(delay):
                break
            retry = self.source.fetch(sorted(failures), start, end)
            frames.append(retry.prices)
            failures = dict(retry.failures)
        return FetchResult(prices=pl.concat(frames, how="vertical_relaxed"), failures=failures)
