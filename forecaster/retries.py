"""Retrying with exponential backoff (tenacity), where a stop request cuts the wait short.

One policy for every retry of the package: the price source's failed tickers, a database that
cannot be reached at start, and a forecast job that lost its database. Waits are 1, 2, 4…
times the first delay; a stop request (SIGTERM) during a wait ends the retrying at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from forecaster.errors import DatabaseUnavailable, one_line

log = logging.getLogger(__name__)


class StopRequested(Exception):
    """A stop was requested while waiting to retry."""


@dataclass(frozen=True)
class Backoff:
    """Up to `retries` more attempts, waiting first_delay · 2^k seconds before the k-th."""

    retries: int
    first_delay: float


def _interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise StopRequested

    return sleep


def with_backoff(
    backoff: Backoff,
    *,
    stop: threading.Event,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    before_wait: Callable[[BaseException, int, float], None],
) -> Retrying:
    """A tenacity `Retrying` that calls again up to `backoff.retries` times after an exception of
    `retry_on`, waiting backoff.first_delay · 2^k between calls; other exceptions, and the last one
    once the retries are spent, propagate. `before_wait(error, retry number, seconds)` is called
    before each wait (to log it); StopRequested is raised if `stop` is set during a wait."""

    def announce(state: RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        error = state.outcome.exception()
        assert error is not None
        before_wait(error, state.attempt_number, state.next_action.sleep)

    return Retrying(
        stop=stop_after_attempt(backoff.retries + 1),
        wait=wait_exponential(multiplier=backoff.first_delay, exp_base=2, min=0, max=float("inf")),
        retry=retry_if_exception_type(retry_on),
        sleep=_interruptible_sleep(stop),
        before_sleep=announce,
        reraise=True,
    )


def database_retrying(backoff: Backoff, stop: threading.Event) -> Retrying:
    """Retries while the database cannot be reached (refused, down, restarting), one log line each."""

    def announce(error: BaseException, retry: int, seconds: float) -> None:
        reason = str(error) if isinstance(error, DatabaseUnavailable) else one_line(error)
        log.warning(
            "database unavailable (%s); retry %d of %d in %.0f s",
            reason,
            retry,
            backoff.retries,
            seconds,
            extra={"event": "database_retry"},
        )

    return with_backoff(
        backoff, stop=stop, retry_on=(DatabaseUnavailable, sa.exc.OperationalError), before_wait=announce
    )
