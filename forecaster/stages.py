"""Seconds this process spends on each stage of the cycles it takes part in: fetch, train, write.

The code that does a stage times it here (`timed`); the daemon's metrics (forecaster.daemon.
metrics) read it back. Per calendar it keeps the running totals and the seconds of the latest
cycle (the latest session recorded: a stage of a new session starts that cycle's count afresh).
On PostgreSQL each worker process counts what it did itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

STAGES = ("fetch", "train", "write")


@dataclass
class CycleStages:
    as_of: date
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


_lock = threading.Lock()
_latest: dict[str, CycleStages] = {}  # calendar -> its latest cycle's stages
_totals: dict[tuple[str, str], float] = {}  # (calendar, stage) -> seconds since the process started


@contextmanager
def timed(stage: str, calendar: str, as_of: date) -> Iterator[None]:
    """Adds the seconds the block takes to `stage` of the cycle of `calendar` after session `as_of`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record(stage, calendar, as_of, time.perf_counter() - started)


def record(stage: str, calendar: str, as_of: date, seconds: float) -> None:
    assert stage in STAGES, stage
    with _lock:
        latest = _latest.get(calendar)
        if latest is None or latest.as_of != as_of:
            latest = _latest[calendar] = CycleStages(as_of)
        latest.seconds[stage] += seconds
        _totals[(calendar, stage)] = _totals.get((calendar, stage), 0.0) + seconds


def latest_cycles() -> dict[str, CycleStages]:
    with _lock:
        return {calendar: CycleStages(c.as_of, dict(c.seconds)) for calendar, c in _latest.items()}


def totals() -> dict[tuple[str, str], float]:
    with _lock:
        return dict(_totals)
