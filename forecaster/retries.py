"""Retrying with exponential backoff (tenacity), where a stop request cuts the wait short.

One policy for every retry of the package: the price source's failed tickers, a database that
cannot be reached at start, and a forecast job that lost its database. Waits are 1, 2, 4…
times the first delay; a stop request (SIGTERM) during a wait ends the retrying at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential


class StopRequested(Exception):
    """A stop was requested while waiting to retry."""


def _interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise StopRequested

    return sleep


def with_backoff(
    *,
    retries: int,
    first_delay: float,
    stop: threading.Event,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    before_wait: Callable[[BaseException, int, float], None],
) -> Retrying:
    """A tenacity `Retrying` that calls again up to `retries` times after an exception of
    `retry_on`, waiting first_delay · 2^k between calls; other exceptions, and the last one
    once the retries are spent, propagate. `before_wait(error, retry number, seconds)` is called
    before each wait (to log it); StopRequested is raised if `stop` is set during a wait."""

    def announce(state: RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        error = state.outcome.exception()
        assert error is not None
        before_wait(error, state.attempt_number, state.next_action.sleep)

    return Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=first_delay, exp_base=2, min=0, max=float("inf")),
        retry=retry_if_exception_type(retry_on),
        sleep=_interruptible_sleep(stop),
        before_sleep=announce,
        reraise=True,
    )
