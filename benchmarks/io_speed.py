"""How fast prices come in: the largest shared price file read, and the synthetic source at scale.

    .venv/bin/python benchmarks/io_speed.py

Prints the best of three runs of each; figures for the README, not assertions (a busy
machine would fail a timed test).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from forecaster.calendar import NYSE, trading_calendar
from forecaster.prices.files import read_price_file
from forecaster.prices.sources.synthetic import SyntheticSource

NYSE_CALENDAR = trading_calendar(NYSE)

SP500 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_stocks_2013_2018_long.csv"


def best_of(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> int:
    NYSE_CALENDAR.is_session(date(2024, 1, 2))  # build the calendar outside the timings
    if SP500.exists():
        seconds = best_of(3, lambda: read_price_file(SP500))
        print(f"read {SP500.name} (619,040 rows, 505 tickers): {seconds:.2f} s")
    else:
        print(f"{SP500} not found: skipped the file read", file=sys.stderr)
    tickers = [f"T{i:04d}" for i in range(5000)]
    seconds = best_of(3, lambda: SyntheticSource().fetch(tickers, date(2024, 1, 2), date(2025, 3, 13)))
    print(f"synthetic source, 5,000 tickers x 300 sessions: {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
