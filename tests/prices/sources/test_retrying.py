"""Failed tickers are fetched again with exponential backoff, a bounded number of times."""

from __future__ import annotations

import threading
from datetime import date

from forecaster.prices.sources.retrying import RetryingSource
from forecaster.retries import Backoff
from tests.support.fakes import FaultySource

START, END = date(2024, 3, 1), date(2024, 3, 8)


def _flaky(failing: set[str], failures: int) -> FaultySource:
    """Fails the named tickers on the first `failures` calls, then serves synthetic prices."""
    return FaultySource(seed=2, name="flaky", failing=failing, reason="rate limited", failing_calls=failures)


def test_a_transient_failure_is_retried_for_the_failed_tickers_only():
    flaky = _flaky({"BBB"}, failures=2)
    source = RetryingSource(flaky, backoff=Backoff(3, 0.01), stop=threading.Event())

    result = source.fetch(["AAA", "BBB"], START, END)

    assert result.failures == {}
    assert sorted(result.prices["ticker"].unique().to_list()) == ["AAA", "BBB"]
    assert [list(call.tickers) for call in flaky.calls] == [["AAA", "BBB"], ["BBB"], ["BBB"]]


def test_after_the_last_retry_the_tickers_are_reported_failed():
    flaky = _flaky({"BBB"}, failures=10)
    source = RetryingSource(flaky, backoff=Backoff(2, 0.01), stop=threading.Event())

    result = source.fetch(["AAA", "BBB"], START, END)

    assert result.failures == {"BBB": "rate limited"}
    assert len(flaky.calls) == 3


def test_a_stop_request_ends_the_backoff_wait_at_once_and_retries_nothing():
    stop = threading.Event()
    stop.set()
    flaky = _flaky({"AAA"}, failures=10)
    source = RetryingSource(flaky, backoff=Backoff(5, 3600), stop=stop)

    result = source.fetch(["AAA"], START, END)  # returns at once: an hour's wait would time the test out

    assert result.failures == {"AAA": "rate limited"}
    assert len(flaky.calls) == 1
