"""What every cycle of one process shares: the database, the price source, the watch list, the
preset, the worker's knobs, the clock, the stop request and the scheduler lock.

The composition root (forecaster.app) builds one from the settings for `run`, `run --once` and
`backfill`; tests build one directly. Nothing below it reads the settings.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from forecaster.config import Settings
from forecaster.errors import NotInCharge
from forecaster.markets import resolve_calendar, settle_minutes
from forecaster.model.presets import Preset
from forecaster.prices.ingest import PriceRules
from forecaster.prices.sources.base import PriceSource
from forecaster.store.retention import Retention

_DEFAULTS = Settings.model_fields  # the settings' defaults, for a context built without settings (tests)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SchedulerLock(Protocol):
    """The scheduler lock as a cycle sees it (forecaster.daemon.leadership.Leadership)."""

    def verify(self) -> bool:
        """True while this process holds the lock."""
        ...

    def fence(self, connection: sa.Connection) -> bool:
        """First in a transaction of a write only the holder may make: True while this process
        holds the lock, which then cannot change hands before the transaction ends."""
        ...


@dataclass
class CycleContext:
    engine: sa.Engine
    source: PriceSource
    tickers: Sequence[str]
    preset: Preset
    #: how far back to fetch before the first session a ticker is forecast from
    history_sessions: int = _DEFAULTS["history_sessions"].default
    #: tickers or ".SUFFIX"es -> calendar names, over the resolution of forecaster.markets
    calendars: Mapping[str, str] = field(default_factory=dict)
    #: after a close before its bar is final; None: each market's default
    settle_minutes: int | None = _DEFAULTS["settle_minutes"].default
    #: sessions a missing close is waited for before it is accepted as a gap
    gap_wait_sessions: int = _DEFAULTS["gap_wait_sessions"].default
    overlap_sessions: int = _DEFAULTS["overlap_sessions"].default  # latest stored sessions asked for again
    jump_threshold: float = _DEFAULTS["jump_threshold"].default  # a move beyond this is looked at twice
    claim_size: int = _DEFAULTS["claim_size"].default  # tickers a worker leases at once
    #: model states and loss curves kept per ticker; the cycle prunes the rest of those it writes
    retention: Retention = field(
        default_factory=lambda: Retention(_DEFAULTS["keep_states"].default, _DEFAULTS["keep_loss_curves"].default)
    )
    #: a claim not renewed by then is taken over by another worker
    lease: timedelta = timedelta(seconds=_DEFAULTS["lease_seconds"].default)
    clock: Callable[[], datetime] = utc_now
    host: str = field(default_factory=socket.gethostname)
    stop_event: threading.Event = field(default_factory=threading.Event)
    #: one claim at a time per process: the compiled trainer already uses every core
    training_lock: threading.Lock = field(default_factory=threading.Lock)
    #: the scheduler lock this process runs cycles under; None where no lock is involved (tests)
    lock: SchedulerLock | None = None

    def calendar_of(self, ticker: str) -> str:
        """The name of the calendar `ticker` trades on."""
        return resolve_calendar(ticker, self.calendars)

    def markets(self, tickers: Sequence[str] | None = None) -> dict[str, list[str]]:
        """{calendar name: its tickers, in watch-list order} of `tickers` (default: the watch list),
        calendars in the order of their first ticker."""
        grouped: dict[str, list[str]] = {}
        for ticker in self.tickers if tickers is None else tickers:
            grouped.setdefault(self.calendar_of(ticker), []).append(ticker)
        return grouped

    def settle(self, calendar: str) -> timedelta:
        """How long after a session's close of `calendar` its bar counts as final."""
        return timedelta(minutes=settle_minutes(calendar, self.settle_minutes))

    @property
    def price_rules(self) -> PriceRules:
        return PriceRules(self.history_sessions, self.overlap_sessions, self.jump_threshold)

    @property
    def worker_id(self) -> str:
        return f"{self.host}:{os.getpid()}"

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleeps up to `seconds`; True when a stop was requested meanwhile."""
        return self.stop_event.wait(seconds)

    def in_charge(self) -> bool:
        """False once this process no longer holds the scheduler lock (checked before each cycle
        and while a cycle waits on other workers); always True where no lock is involved."""
        return self.lock is None or self.lock.verify()

    def check_in_charge(self) -> None:
        if not self.in_charge():
            raise NotInCharge("this process no longer holds the scheduler lock")

    @contextmanager
    def scheduler_transaction(self) -> Iterator[sa.Connection]:
        """A transaction for a write only the scheduler lock's holder may make (a run started or
        finished, tasks enqueued, series started): it raises NotInCharge, writing nothing, once
        another process holds the lock, however long this one slept."""
        with self.engine.begin() as connection:
            if self.lock is not None and not self.lock.fence(connection):
                raise NotInCharge("another process holds the scheduler lock now")
            yield connection
