"""Report scale: the daily report of 50 and 5,000 tickers, its size, build time and Chromium's load time.

    python benchmarks/report_scale.py SHOTS_DIR [--tickers 50,5000] [--sessions 80] [--charts 5]

For each count a fresh SQLite database (in a temporary directory) gets, per ticker,
a random-walk close for each NYSE session, a forecast after each close with 80 %
and 95 % bounds and its fit's last loss, as the daily cycle writes them (directly
inserted, no training): tickers differ in how noisy their forecasts are, so some are
worse than the naive forecast, and in how wide their intervals are, so some cover
too little or too much. One ticker in ten is on the London calendar; one in two
hundred fails in the last session's run. Then `write_reports` writes md, html and
csv as `forecaster report --format md,html,csv` does (the build time, best of
--repeat), and headless Chromium opens the HTML: the time from navigation to the
load event (and the process's wall time), then one sort of the ticker table and one
filter, timed in the page. Screenshots of each report go into SHOTS_DIR: the top of
the page, the first charts, the ticker table (scrolled, with its sticky header; as
sorted and filtered by its script; and without script). The reports stay in
SHOTS_DIR/report-N/.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.report.writer import write_reports
from forecaster.store.database import make_engine, upgrade
from forecaster.store.schema import forecast_series, predictions, prices, run_failures, runs

PRESET = "default"
LAST = date(2025, 9, 30)
WIDTH = 1300

#: Appended to a copy of the report: on load, the time since navigation; where the table's header is once
#: the page is scrolled to the middle of the table (0: stuck to the top of the window); then one sort (by
#: skill over 60, best first: the header clicked twice) and one filter, each timed.
PROBE = """<script>
window.addEventListener("load", () => {
  const body = document.body.dataset;
  body.loadMs = performance.now().toFixed(0);
  const table = document.querySelector("table.tickers");
  window.scrollTo(0, table.getBoundingClientRect().top + window.scrollY + table.offsetHeight / 2);
  body.headerTop = table.tHead.rows[0].cells[0].getBoundingClientRect().top.toFixed(0);
  window.scrollTo(0, 0);
  const skill = [...table.tHead.rows[0].cells].find((th) => th.textContent.startsWith("Skill 60"));
  let started = performance.now();
  skill.click();
  skill.click();
  body.sortMs = (performance.now() - started).toFixed(1);
  const box = document.querySelector("input.filter");
  box.value = "worse";
  started = performance.now();
  box.dispatchEvent(new Event("input"));
  body.filterMs = (performance.now() - started).toFixed(1);
  body.filtered = document.querySelector("span.count").textContent;
});
</script>"""

#: Appended to a copy for a screenshot of one section: headless Chromium's screenshot is of the top of the
#: page, scrolled or not, so the sections above are hidden.
ONLY = "<style>body > header, body > section:not({anchor}) {{ display: none; }}</style>"


def populate(engine: sa.Engine, tickers: int, sessions: int) -> date:
    """The tables of `tickers` x `sessions` (see the module docstring); returns the session reported."""
    days = trading_calendar(NYSE).sessions_between(LAST - timedelta(days=2 * sessions), LAST)[-sessions - 1 :]
    rng = np.random.default_rng(11)
    names = [f"T{k:04d}" for k in range(tickers)]
    failing = set(names[7::200])
    returns = rng.normal(0, 0.012, size=(tickers, len(days)))
    closes = rng.uniform(5, 500, size=(tickers, 1)) * np.exp(np.cumsum(returns, axis=1))
    # Forecast noise from a fraction of the move to about twice it: skill from below 1 to above.
    noise = rng.uniform(0.4, 1.6, size=(tickers, 1)) * 0.012
    predicted = closes * np.exp(rng.normal(0, 1, size=closes.shape) * noise)  # predicted[i, j]: for days[j]
    half_80 = rng.uniform(0.6, 1.6, size=(tickers, 1)) * 1.28 * 0.012  # in log units; 1 is about right
    now = datetime.now(UTC)
    with engine.begin() as c:
        run_ids = [
            c.execute(
                runs.insert()
                .values(
                    kind="daily",
                    as_of=d,
                    preset=PRESET,
                    started_at=datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=21),
                    finished_at=datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=21, seconds=95),
                    status="partial" if d == days[-2] else "ok",
                    tickers_ok=tickers - (len(failing) if d == days[-2] else 0),
                    tickers_failed=len(failing) if d == days[-2] else 0,
                    calendar=NYSE,
                )
                .returning(runs.c.id)
            ).scalar_one()
            for d in days[:-1]
        ]
        c.execute(
            forecast_series.insert(),
            [
                {"preset": PRESET, "ticker": t, "first_as_of": days[0], "created_at": now, "calendar": _calendar(i)}
                for i, t in enumerate(names)
            ],
        )
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
                _forecast(t, days, j, closes[i], predicted[i], float(half_80[i, 0]), run_ids[j], now)
                for i, t in enumerate(names)
                for j in range(len(days) - 1)
                if not (t in failing and j == len(days) - 2)
            ],
        )
        c.execute(
            run_failures.insert(),
            [
                {"run_id": run_ids[-1], "ticker": t, "stage": "fetch", "reason": f"no data returned for {t}"}
                for t in sorted(failing)
            ],
        )
    return days[-2]


def _calendar(i: int) -> str:
    return "XLON" if i % 10 == 9 else NYSE


def _forecast(
    ticker: str,
    days: list[date],
    j: int,
    closes: np.ndarray,
    predicted: np.ndarray,
    half_80: float,
    run_id: int,
    now: datetime,
) -> dict[str, Any]:
    """The forecast after the close of days[j] for days[j + 1]."""
    value = float(predicted[j + 1])
    half_95 = half_80 * 1.96 / 1.28
    return {
        "ticker": ticker,
        "preset": PRESET,
        "as_of": days[j],
        "target_session": days[j + 1],
        "predicted_close": value,
        "last_close": float(closes[j]),
        "run_id": run_id,
        "created_at": now,
        "lower_80": value * np.exp(-half_80),
        "upper_80": value * np.exp(half_80),
        "lower_95": value * np.exp(-half_95),
        "upper_95": value * np.exp(half_95),
        "interval_method": "bench",
        "fit_epochs": 10,
        "fit_first_loss": 0.8,
        "fit_last_loss": 0.7 + 0.02 * np.sin(j / 5) + 0.1 * half_80 / 0.012,
    }


def chromium(*args: str, profile: Path) -> tuple[str, float]:
    """Headless Chromium's stdout, and its wall time in seconds."""
    binary = shutil.which("chromium")
    if binary is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    started = time.perf_counter()
    done = subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout, time.perf_counter() - started


def with_script(page: Path, copy: Path, script: str) -> Path:
    """A copy of `page` (self-contained, so it may be anywhere) with `script` before </body>."""
    copy.write_text(page.read_text().replace("</body>", script + "</body>"))
    return copy


def screenshots(page: Path, shots: Path, label: str, scratch: Path) -> list[Path]:
    """The top of the page, its charts, and the ticker table: as written, sorted and filtered by its
    script (as PROBE does it), and without script."""
    table = ONLY.format(anchor="#tickers")
    # Without script: the report's own taken out (a screenshot needs script enabled in Chromium).
    scriptless = scratch / "scriptless.html"
    scriptless.write_text(re.sub(r"<script>.*?</script>", "", page.read_text(), flags=re.S))
    views = {
        "top": (page, 1800),
        "charts": (with_script(page, scratch / "charts.html", ONLY.format(anchor="#charts")), 2400),
        "table": (with_script(page, scratch / "table.html", table), 1200),
        "table-sorted-filtered": (with_script(page, scratch / "sorted.html", PROBE + table), 900),
        "table-without-script": (with_script(scriptless, scriptless, table), 900),
    }
    taken = []
    for view, (source, height) in views.items():
        shot = shots / f"{label}-{view}.png"
        chromium(f"--window-size={WIDTH},{height}", f"--screenshot={shot}", source.as_uri(), profile=scratch)
        taken.append(shot)
    return taken


def measure(count: int, sessions: int, charts: int, repeat: int, shots: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/report.db")
        upgrade(engine)
        started = time.perf_counter()
        as_of = populate(engine, count, sessions)
        populated = time.perf_counter() - started
        out_dir = shots / f"report-{count}"
        builds = []
        for _ in range(repeat):
            started = time.perf_counter()
            md, page, csv = write_reports(
                engine, as_of=as_of, preset=PRESET, formats=["md", "html", "csv"], out_dir=out_dir, charts=charts
            )
            builds.append(time.perf_counter() - started)
        engine.dispose()
        probe = with_script(page, Path(scratch) / "probe.html", PROBE)
        dom, wall = chromium(f"--window-size={WIDTH},1800", "--dump-dom", probe.as_uri(), profile=Path(scratch))
        found = dict(re.findall(r'data-(load-ms|header-top|sort-ms|filter-ms|filtered)="([^"]*)"', dom))
        taken = screenshots(page, shots, f"{count}-tickers", Path(scratch))
    pngs = sorted((out_dir / md.stem).glob("*.png"))
    return {
        "tickers": count,
        "populate_s": round(populated, 1),
        "build_s": round(min(builds), 2),
        "html_bytes": page.stat().st_size,
        "html_charts": page.read_text().count("data:image/png;base64,"),
        "md_bytes": md.stat().st_size,
        "csv_bytes": csv.stat().st_size,
        "png_bytes": sum(p.stat().st_size for p in pngs),
        "chromium_load_ms": int(found["load-ms"]),
        "chromium_wall_s": round(wall, 2),
        "header_top_px_when_scrolled": int(found["header-top"]),
        "sort_ms": float(found["sort-ms"]),
        "filter_ms": float(found["filter-ms"]),
        "filter_worse": found["filtered"],
        "screenshots": [str(p) for p in taken],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shots", type=Path, help="directory for the screenshots and reports")
    parser.add_argument("--tickers", default="50,5000", help="comma-separated ticker counts (default: 50,5000)")
    parser.add_argument("--sessions", type=int, default=80, help="sessions of history per ticker")
    parser.add_argument("--charts", type=int, default=5, help="tickers per chart group")
    parser.add_argument("--repeat", type=int, default=2, help="builds timed per count; the best is shown")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    for count in (int(n) for n in args.tickers.split(",")):
        result = measure(count, args.sessions, args.charts, args.repeat, args.shots)
        print(json.dumps(result))
        print(
            f"{count:>6} tickers: HTML {result['html_bytes'] / 1e6:.2f} MB ({result['html_charts']} charts inline), "
            f"markdown {result['md_bytes'] / 1e3:.0f} kB + PNGs {result['png_bytes'] / 1e6:.2f} MB, "
            f"CSV {result['csv_bytes'] / 1e6:.2f} MB; built in {result['build_s']:.1f} s; Chromium: load "
            f"{result['chromium_load_ms']} ms ({result['chromium_wall_s']:.1f} s with its start), sort "
            f"{result['sort_ms']:.0f} ms, filter {result['filter_ms']:.0f} ms"
        )


if __name__ == "__main__":
    main()
