"""Report speed: writing the daily report of many tickers, each phase timed.

    python benchmarks/report_speed.py [--tickers 500] [--sessions 60] [--charts 5] [--intervals]
                                      [--database-url URL] [--keep DIR]

A fresh database (a temporary SQLite file unless --database-url names an empty,
migrated-on-the-fly one) gets, per ticker, a random-walk close for each session, a
forecast after each close (with 80 % and 95 % bounds under --intervals), ten
warm-start epochs of training loss per session, and one run per session; three
tickers fail in the last run. Then the report of the last session is timed: reading
the tables (`load_report`), drawing the charts (`draw_charts`), rendering markdown,
HTML and CSV, and all of it together as the daemon's job does it (`write_reports`
for md, html and csv). Wall-clock seconds, best of --repeat.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from forecaster.report.charts import draw_charts
from forecaster.report.data import load_report
from forecaster.report.render import render_csv, render_html, render_markdown
from forecaster.report.writer import write_reports
from forecaster.store.database import make_engine, upgrade
from forecaster.store.schema import predictions, prices, run_failures, runs, training_losses

PRESET = "default"
FIRST = date(2025, 1, 2)
EPOCHS = 10


def _sessions(count: int) -> list[date]:
    """Weekdays from FIRST: the report does not care about holidays."""
    days = (FIRST + timedelta(days=i) for i in range(count * 2))
    return [d for d in days if d.weekday() < 5][:count]


def populate(engine: sa.Engine, tickers: int, sessions: int, intervals: bool) -> date:
    """The tables of `tickers` x `sessions` (see the module docstring); returns the last session."""
    days = _sessions(sessions + 1)
    rng = np.random.default_rng(7)
    names = [f"T{k:04d}" for k in range(tickers)]
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(tickers, len(days))), axis=1))  # (tickers, sessions)
    predicted = closes * np.exp(rng.normal(0, 0.011, size=closes.shape))  # the forecast made the session before
    now = datetime.now(UTC)
    with engine.begin() as c:
        run_ids = [
            c.execute(
                runs.insert()
                .values(
                    kind="backfill",
                    as_of=d,
                    preset=PRESET,
                    started_at=now,
                    finished_at=now,
                    status="ok",
                    tickers_ok=tickers,
                    tickers_failed=0,
                )
                .returning(runs.c.id)
            ).scalar_one()
            for d in days[:-1]
        ]
        c.execute(
            prices.insert(),
            [
                {"ticker": t, "session_date": d, "close": float(closes[i, j]), "source": "bench", "fetched_at": now}
                for i, t in enumerate(names)
                for j, d in enumerate(days[:-1])
            ],
        )
        c.execute(
            predictions.insert(),
            [
                _forecast(t, days, i, j, closes, predicted, run_ids, now, intervals)
                for i, t in enumerate(names)
                for j in range(len(days) - 1)
            ],
        )
        c.execute(
            training_losses.insert(),
            [
                {
                    "ticker": t,
                    "preset": PRESET,
                    "trained_through": d,
                    "epoch": e,
                    "loss": 1.0 - e / 1000,
                    "run_id": run_ids[j],
                }
                for t in names
                for j, d in enumerate(days[:-1])
                for e in range(1, EPOCHS + 1)
            ],
        )
        c.execute(
            run_failures.insert(),
            [
                {"run_id": run_ids[-1], "ticker": f"FAIL{k}", "stage": "fetch", "reason": "no data returned"}
                for k in range(3)
            ],
        )
    return days[-2]


def _forecast(
    ticker: str,
    days: list[date],
    i: int,
    j: int,
    closes: np.ndarray,
    predicted: np.ndarray,
    run_ids: list[int],
    now: datetime,
    intervals: bool,
) -> dict[str, Any]:
    value = float(predicted[i, j + 1])
    row = {
        "ticker": ticker,
        "preset": PRESET,
        "as_of": days[j],
        "target_session": days[j + 1],
        "predicted_close": value,
        "last_close": float(closes[i, j]),
        "run_id": run_ids[j],
        "created_at": now,
    }
    if intervals:
        row |= {
            "lower_80": value * 0.985,
            "upper_80": value * 1.015,
            "lower_95": value * 0.977,
            "upper_95": value * 1.023,
            "interval_method": "bench",
        }
    return row


def best_of(repeat: int, step: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--charts", type=int, default=5, help="worst and best N charted")
    parser.add_argument("--intervals", action="store_true", help="forecasts with 80 %% and 95 %% bounds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--keep", help="write the reports into this directory (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(args.database_url or f"sqlite:///{scratch}/report.db")
        upgrade(engine)
        started = time.perf_counter()
        as_of = populate(engine, args.tickers, args.sessions, args.intervals)
        print(f"{args.tickers} tickers x {args.sessions} sessions written in {time.perf_counter() - started:.1f} s")
        out_dir = Path(args.keep or scratch) / "reports"

        data = load_report(engine, as_of=as_of, preset=PRESET, charts=args.charts)
        charts = draw_charts(data)
        phases: dict[str, Callable[[], object]] = {
            "read the tables": lambda: load_report(engine, as_of=as_of, preset=PRESET, charts=args.charts),
            f"draw {len(charts.pngs)} charts": lambda: draw_charts(data),
            "render markdown": lambda: render_markdown(data, charts, "report", "report.csv"),
            "render HTML": lambda: render_html(data, charts),
            "render CSV": lambda: render_csv(data),
            "write_reports md, html, csv": lambda: write_reports(
                engine, as_of=as_of, preset=PRESET, formats=["md", "html", "csv"], out_dir=out_dir, charts=args.charts
            ),
        }
        for name, step in phases.items():
            print(f"{name:>30}: {best_of(args.repeat, step):6.2f} s")
        engine.dispose()
        if args.keep:
            print(f"reports in {out_dir}")


if __name__ == "__main__":
    main()
