"""Retries a source's failed tickers with exponential backoff, a bounded number of times."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from datetime import date

import polars as pl

from forecaster.prices.sources.base import FetchResult, PriceSource
from forecaster.retries import Backoff, StopRequested, with_backoff

log = logging.getLogger(__name__)


class _Unfetched(Exception):
    """Some tickers failed: fetch those again."""


class RetryingSource:
    """Wraps a PriceSource: tickers that fail are fetched again after 1, 2, 4… × backoff.first_delay,
    up to backoff.retries more times; a stop request ends the waiting early. What still fails is returned
    as failed, for the run to record and the next cycle to retry."""

    def __init__(self, source: PriceSource, *, backoff: Backoff, stop: threading.Event) -> None:
        self.source = source
        self.name = source.name
        self.backoff = backoff
        self.stop = stop

    def fetch(self, tickers: Sequence[str], start: date, end: date) -> FetchResult:
        frames: list[pl.DataFrame] = []
        failures: dict[str, str] = {}
        pending = list(tickers)

        def fetch_pending() -> None:
            nonlocal pending
            result = self.source.fetch(pending, start, end)
            frames.append(result.prices)
            failures.clear()
            failures.update(result.failures)
            pending = sorted(failures)
            if failures:
                raise _Unfetched

        def announce(_error: BaseException, retry: int, seconds: float) -> None:
            log.info(
                "fetch failed for %d ticker(s); retry %d of %d in %.1f s",
                len(failures),
                retry,
                self.backoff.retries,
                seconds,
            )

        retrying = with_backoff(
            self.backoff,
            stop=self.stop,
            retry_on=_Unfetched,
            before_wait=announce,
        )
        with contextlib.suppress(_Unfetched, StopRequested):  # what still fails is reported as failed
            retrying(fetch_pending)
        return FetchResult(prices=pl.concat(frames, how="vertical_relaxed"), failures=failures)
