"""A simulated year of daily cycles: bytes stored per ticker-session, and whether the cycle slows as tables grow.

    python benchmarks/storage_year.py [--tickers 1000] [--sessions 252] [--backends sqlite,postgresql]
                                      [--modes retention,keep-all] [--postgres-url URL]

One backfill (the daemon's cycle, one session at a time: fetch, fit, forecast, write, prune) of
`--tickers` synthetic tickers over `--sessions` NYSE sessions, for each backend and mode:

- retention: the defaults (FORECASTER_KEEP_STATES, FORECASTER_KEEP_LOSS_CURVES);
- keep-all: nothing pruned (both settings at their maximum), what every version before
  retention stored (less the predictions index retention dropped).

At a few checkpoints it reads every table's size (forecaster.store.sizes: SQLite's dbstat,
PostgreSQL's pg_total_relation_size; on a server with autovacuum off, as the test server here,
a VACUUM every VACUUM_EVERY sessions stands in for it) and prints the bytes per
ticker-session, overall and since the previous checkpoint (the steady-state growth: the
history fetched before the first session, ~300 sessions of prices, is in the first figure
only). Then the mean cycle time of the first and last 10 warm sessions, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from scratch_postgres import scratch_database

from forecaster import app
from forecaster.calendar import NYSE, trading_calendar
from forecaster.config import Settings
from forecaster.cycle import CycleOutcome
from forecaster.store.database import make_engine
from forecaster.store.sizes import table_sizes

NYSE_CALENDAR = trading_calendar(NYSE)
END = date(2025, 11, 28)
MODES = {"retention": {}, "keep-all": {"keep_states": 10_000, "keep_loss_curves": 10_000}}
TRACKED = ("prices", "predictions", "model_states", "training_losses")
#: Sessions between two VACUUMs where the server's autovacuum is off (it is on by default).
VACUUM_EVERY = 10


class _StatementClock:
    """With --profile-statements: the seconds of each SQL statement (by its first words) in the
    first and last 10 warm sessions, to show which ones grow with the tables."""

    def __init__(self) -> None:
        self.session = 0
        self.seconds: dict[int, dict[str, float]] = {}
        self._started: dict[int, float] = {}
        sa.event.listen(sa.Engine, "before_cursor_execute", self._before)
        sa.event.listen(sa.Engine, "after_cursor_execute", self._after)

    def _before(self, conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        key = " ".join(statement.split())[:90]
        spent = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        per_session = self.seconds.setdefault(self.session, {})
        per_session[key] = per_session.get(key, 0.0) + spent

    def wrap(self, on_cycle: Callable[[CycleOutcome], None]) -> Callable[[CycleOutcome], None]:
        def counted(outcome: CycleOutcome) -> None:
            on_cycle(outcome)
            self.session += 1

        return counted

    def report(self) -> None:
        sessions = sorted(self.seconds)
        first, last = sessions[1:11], sessions[-10:]
        keys = {key for session in first + last for key in self.seconds[session]}

        def mean(key: str, of: list[int]) -> float:
            return sum(self.seconds[s].get(key, 0.0) for s in of) / len(of)

        growth = sorted(keys, key=lambda key: mean(key, last) - mean(key, first), reverse=True)
        print("statements, mean ms per session: first 10 warm, last 10, the most grown first")
        for key in growth[:8]:
            print(f"  {1000 * mean(key, first):8.1f} {1000 * mean(key, last):8.1f}  {key}")


def run_year(url: str, tickers: int, sessions: int, mode: str, profile: bool = False) -> None:
    start = NYSE_CALENDAR.sessions_back(END, sessions)
    settings = Settings(
        database_url=url,
        source="synthetic:11",
        tickers=tuple(f"S{k:05d}" for k in range(tickers)),
        **MODES[mode],  # type: ignore[arg-type]
    )
    checkpoints = {round(sessions * share) for share in (0.1, 0.25, 0.5, 0.75, 1.0)}
    vacuum_every = VACUUM_EVERY if url.startswith("postgresql") and not _autovacuum(url) else 0
    if vacuum_every:
        print(f"this server runs with autovacuum off: VACUUM after every {vacuum_every} sessions, as autovacuum would")
    readers: list[sa.Engine] = []  # one, made at the first checkpoint (the backfill creates a SQLite file)
    seconds: list[float] = []
    previous = {"at": time.perf_counter(), "bytes": 0, "forecasts": 0}
    print(
        f"{'session':>8} {'forecasts':>10} {'MB':>9} {'B/ticker-session':>17} {'since last':>11}  " + "  ".join(TRACKED)
    )

    def on_cycle(outcome: CycleOutcome) -> None:
        now = time.perf_counter()
        seconds.append(now - previous["at"])
        done = len(seconds)
        if vacuum_every and done % vacuum_every == 0:
            _vacuum(url)  # what autovacuum would have done meanwhile (outside the cycle times)
        if done in checkpoints:
            readers[:] = readers or [make_engine(url, create=False)]
            with readers[0].connect() as connection:
                sizes = {size.table: size for size in table_sizes(connection)}
            total = sum(size.bytes or 0 for size in sizes.values())
            forecasts = sizes["predictions"].rows
            since = (total - previous["bytes"]) / max(1, forecasts - previous["forecasts"])
            shares = "  ".join(f"{(sizes[t].bytes or 0) / forecasts:>{len(t)}.0f}" for t in TRACKED)
            print(
                f"{done:>8} {forecasts:>10} {total / 1e6:>9.1f} {total / forecasts:>17.0f} {since:>11.0f}  {shares}",
                flush=True,
            )
            previous.update(bytes=total, forecasts=forecasts)
        previous["at"] = time.perf_counter()

    statements = _StatementClock() if profile else None
    outcomes = app.run_backfill(
        settings, start, END, on_cycle=on_cycle if statements is None else statements.wrap(on_cycle)
    )
    for reader in readers:
        reader.dispose()
    if statements is not None:
        statements.report()
    assert all(o.status == "ok" for o in outcomes), [o for o in outcomes if o.status != "ok"][:3]
    warm = seconds[1:]  # the first session's cycle is every ticker's first fit
    first, last = statistics.mean(warm[:10]), statistics.mean(warm[-10:])
    print(
        f"cycle time, mean of 10 warm sessions: first {first:.2f} s, last {last:.2f} s, last/first {last / first:.3f}; "
        f"first session (cold fits) {seconds[0]:.1f} s",
        flush=True,
    )


def _autovacuum(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SHOW autovacuum")).scalar_one() == "on"
    finally:
        engine.dispose()


def _vacuum(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--modes", default="retention,keep-all")
    parser.add_argument(
        "--profile-statements", action="store_true", help="time each SQL statement, first and last sessions"
    )
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(
        f"{args.tickers} synthetic tickers, {args.sessions} NYSE sessions through {END}; {os.cpu_count()} cores; "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as directory:
        for backend in args.backends.split(","):
            for mode in args.modes.split(","):
                print(f"\n{backend}, {mode}", flush=True)
                if backend == "sqlite":
                    run_year(
                        f"sqlite:///{Path(directory) / f'{mode}.db'}",
                        args.tickers,
                        args.sessions,
                        mode,
                        args.profile_statements,
                    )
                    continue
                with scratch_database(args.postgres_url, "fc_year") as url:
                    run_year(url, args.tickers, args.sessions, mode, args.profile_statements)


if __name__ == "__main__":
    main()
