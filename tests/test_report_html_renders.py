"""The HTML report renders in headless Chromium with every chart loaded (SQLite only: rendering is backend-blind)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from forecaster.report.writer import write_report
from forecaster.store.database import make_engine, upgrade
from forecaster.store.schema import predictions, prices, run_failures, runs, training_losses

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

AS_OF = date(2024, 3, 8)
TAB_GREEN = (44, 160, 44)  # the loss curve's colour: found only inside the charts


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", *args,
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )


class ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"] or "")


@pytest.fixture
def report(sqlite_url, tmp_path) -> Path:
    """The HTML report of two tickers with 30 sessions of history, and a third that failed."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = [AS_OF - timedelta(days=29 - i) for i in range(30)]
    fetched = datetime(2024, 3, 8, 22, 30, tzinfo=timezone.utc)
    with engine.begin() as c:
        run = c.execute(runs.insert().values(
            kind="daily", as_of=AS_OF, preset="default", started_at=fetched, finished_at=fetched + timedelta(seconds=9),
            status="partial", tickers_ok=2, tickers_failed=1,
        )).inserted_primary_key[0]
        c.execute(run_failures.insert().values(run_id=run, ticker="CCC", stage="fetch", reason="no data returned"))
        for ticker, base in (("AAA", 100.0), ("BBB", 40.0)):
            closes = [base + i % 7 for i in range(30)]
            c.execute(prices.insert(), [
                {"ticker": ticker, "session_date": d, "close": v, "source": "test", "fetched_at": fetched}
                for d, v in zip(sessions, closes)
            ])
            c.execute(predictions.insert(), [
                {"ticker": ticker, "preset": "default", "as_of": d, "target_session": d + timedelta(days=1),
                 "predicted_close": v + 0.5, "last_close": v, "run_id": run, "created_at": fetched}
                for d, v in zip(sessions, closes)
            ])
            c.execute(training_losses.insert(), [
                {"ticker": ticker, "preset": "default", "trained_through": AS_OF, "epoch": e, "loss": 50.0 / e, "run_id": run}
                for e in range(1, 101)
            ])
    path = write_report(engine, as_of=AS_OF, preset="default", fmt="html", out_dir=tmp_path / "reports")
    engine.dispose()
    return path


def test_every_image_of_the_html_report_is_a_png_beside_it(report):
    parser = ImageSources()
    parser.feed(report.read_text())

    assert parser.sources == ["report-2024-03-08/AAA.png", "report-2024-03-08/BBB.png"]
    for src in parser.sources:
        assert (report.parent / src).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_chromium_loads_every_image_of_the_html_report(report, tmp_path):
    # The report's own script sets data-images-loaded="LOADED/TOTAL" on the load event.
    dom = chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile").stdout

    assert 'data-images-loaded="2/2"' in dom


def test_chromium_screenshot_of_the_html_report_shows_tables_and_charts(report, tmp_path):
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri(), profile=tmp_path / "profile")

    rgb = np.rint(imread(shot)[..., :3] * 255).astype(int)  # (height, width, 3)
    assert rgb.shape == (2000, 1200, 3)
    not_white = int(np.any(rgb != 255, axis=-1).sum())
    chart_green = int(np.all(np.abs(rgb - TAB_GREEN) <= 30, axis=-1).sum())
    assert not_white > 0.02 * 1200 * 2000, "the screenshot is blank"
    assert chart_green > 100, "no loss curve in the screenshot: the charts did not render"
