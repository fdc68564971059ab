"""The HTML report is one file that references nothing outside it, renders in headless Chromium with every chart
loaded at full size, and its ticker table sorts, filters and keeps its header in view (SQLite only: rendering is
backend-blind)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
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
NEXT_SESSION_RED = (214, 39, 40)  # tab:red, the next session's forecast: found only inside the ticker charts

#: Appended by the test, never by the report: records on load how many images decoded, and their rendered widths.
IMAGES = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((image) => image.complete && image.naturalWidth > 0);
  document.body.dataset.imagesLoaded = `${loaded.length}/${images.length}`;
  document.body.dataset.widths = images.map((image) => image.getBoundingClientRect().width).join(",");
});
</script>"""

#: Appended by the test: on load, the ticker table's order as written, after a click on the Ticker header, on it
#: again, on the Last close header (numbers largest first) and on it again; then the rows shown once "bbb" is
#: typed in the filter box, and what the box says; last, with the rows repeated to 400, where the header is
#: once the page is scrolled to the middle of the table.
TABLE = """<script>
window.addEventListener("load", () => {
  const table = document.querySelector("table.tickers"), body = document.body.dataset;
  const order = () => [...table.tBodies[0].rows].filter((row) => !row.hidden).map((row) => row.cells[0].textContent);
  const header = (text) => [...table.tHead.rows[0].cells].find((th) => th.textContent.startsWith(text));
  const orders = [order()];
  for (const text of ["Ticker", "Ticker", "Last close", "Last close"]) {
    header(text).click();
    orders.push(order());
  }
  body.orders = orders.map((tickers) => tickers.join(" ")).join(",");
  const box = document.querySelector("input.filter");
  box.value = "bbb";
  box.dispatchEvent(new Event("input"));
  body.filtered = order().join(" ") + "|" + document.querySelector("span.count").textContent;
  box.value = "";
  box.dispatchEvent(new Event("input"));
  const rows = [...table.tBodies[0].rows];
  for (let i = 0; i < 200; i++) table.tBodies[0].append(...rows.map((row) => row.cloneNode(true)));
  window.scrollTo(0, table.getBoundingClientRect().top + window.scrollY + table.offsetHeight / 2);
  body.headerTop = table.tHead.rows[0].cells[0].getBoundingClientRect().top;
});
</script>"""

#: Attributes that would load something: in this report only a data URI (src) or an anchor in the page (href).
LOADING = ("src", "href", "srcset", "action", "data", "poster", "background", "formaction")


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: Path) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page.read_text())
    return parser.tags


@pytest.fixture
def report(sqlite_url, tmp_path) -> Path:
    """The HTML report of two tickers with 30 sessions of history (BBB with 80 % and 95 % intervals), and a third
    that failed."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = [AS_OF - timedelta(days=29 - i) for i in range(30)]
    fetched = datetime(2024, 3, 8, 22, 30, tzinfo=UTC)
    with engine.begin() as c:
        run = c.execute(
            runs.insert().values(
                kind="daily",
                as_of=AS_OF,
                preset="default",
                started_at=fetched,
                finished_at=fetched + timedelta(seconds=9),
                status="partial",
                tickers_ok=2,
                tickers_failed=1,
            )
        ).inserted_primary_key[0]
        c.execute(run_failures.insert().values(run_id=run, ticker="CCC", stage="fetch", reason="no data returned"))
        for ticker, base, half in (("AAA", 100.0, None), ("BBB", 40.0, 1.0)):
            closes = [base + i % 7 for i in range(30)]
            c.execute(
                prices.insert(),
                [
                    {"ticker": ticker, "session_date": d, "close": v, "source": "test", "fetched_at": fetched}
                    for d, v in zip(sessions, closes, strict=True)
                ],
            )
            c.execute(
                predictions.insert(),
                [
                    {
                        "ticker": ticker,
                        "preset": "default",
                        "as_of": d,
                        "target_session": d + timedelta(days=1),
                        "predicted_close": v + 0.5,
                        "last_close": v,
                        "run_id": run,
                        "created_at": fetched,
                        "fit_epochs": 1,
                        "fit_first_loss": 1.0 + i / 100,
                        "fit_last_loss": 1.0 + i / 100,
                        **(
                            {}
                            if half is None
                            else {
                                "lower_80": v - half,
                                "upper_80": v + 1 + half,
                                "lower_95": v - 2 * half,
                                "upper_95": v + 1 + 2 * half,
                                "interval_method": "test",
                            }
                        ),
                    }
                    for i, (d, v) in enumerate(zip(sessions, closes, strict=True))
                ],
            )
            c.execute(
                training_losses.insert(),
                [
                    {
                        "ticker": ticker,
                        "preset": "default",
                        "trained_through": d,
                        "epoch": 1,
                        "loss": 1.0 + i / 100,
                        "run_id": run,
                    }
                    for i, d in enumerate(sessions)
                ],
            )
    path = write_report(engine, as_of=AS_OF, preset="default", fmt="html", out_dir=tmp_path / "reports")
    engine.dispose()
    return path


def test_the_html_report_is_one_file_with_its_charts_inline_and_no_reference_outside_it(report):
    found = tags(report)
    ids = {attrs["id"] for _, attrs in found if attrs.get("id")}
    loading = [(name, value or "") for _, attrs in found for name, value in attrs.items() if name in LOADING]
    text = report.read_text()

    sources = [value for name, value in loading if name == "src"]
    assert len(sources) == 3  # skill over time, AAA and BBB (CCC failed without a history)
    for src in sources:
        prefix, _, data = src.partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert [value for name, value in loading if name != "src"]  # the page's links ...
    assert all(value.startswith("#") and value[1:] in ids for name, value in loading if name != "src")  # ... within it
    assert not [tag for tag, _ in found if tag in ("link", "iframe", "object", "embed", "base")]
    assert "url(" not in text and "@import" not in text
    assert not (report.parent / "report-2024-03-08").exists(), "no image directory beside an HTML-only report"


def test_the_html_reports_only_script_is_its_own_and_no_element_has_a_handler(report):
    found = tags(report)

    assert [tag for tag, _ in found].count("script") == 1  # the ticker table's, inline
    assert [attrs for tag, attrs in found if tag == "script"] == [{}]
    assert [name for _, attrs in found for name in attrs if name.startswith("on")] == []
    assert not [value for _, attrs in found for value in attrs.values() if value and value.startswith("javascript:")]


def test_without_script_the_ticker_table_reads_as_written_worst_first_with_no_filter_box(report):
    found = tags(report)

    assert [tag for tag, _ in found if tag in ("input", "button", "select")] == []  # the script adds the box
    assert re.findall(r"<tr><td>([A-Z]{3})<td>", report.read_text()) == ["AAA", "BBB"]  # worst skill first


def test_chromium_loads_every_image_of_the_html_report_at_full_size(report, tmp_path):
    probe = tmp_path / "probe.html"  # anywhere: the report needs nothing beside it
    probe.write_text(report.read_text().replace("</body>", IMAGES + "</body>"))

    dom = chromium("--window-size=1300,2000", "--dump-dom", probe.as_uri(), profile=tmp_path / "profile").stdout

    assert 'data-images-loaded="3/3"' in dom
    (widths,) = re.findall(r'data-widths="([^"]*)"', dom)
    assert [float(w) for w in widths.split(",")] == [1200.0] * 3  # shown at their own size on a 1300 px window


def test_chromium_sorts_and_filters_the_ticker_table_and_keeps_its_header_in_view(report, tmp_path):
    probe = tmp_path / "table.html"
    probe.write_text(report.read_text().replace("</body>", TABLE + "</body>"))

    dom = chromium("--window-size=1300,1000", "--dump-dom", probe.as_uri(), profile=tmp_path / "profile").stdout

    (orders,) = re.findall(r'data-orders="([^"]*)"', dom)
    assert orders.split(",") == [
        "AAA BBB",  # as written: worst skill first
        "AAA BBB",  # by ticker, A to Z
        "BBB AAA",  # again: Z to A
        "AAA BBB",  # by last close, largest first: about 100 before about 40
        "BBB AAA",  # again: smallest first, as numbers (as text, "104.00" would come before "41.00")
    ]
    assert re.findall(r'data-filtered="([^"]*)"', dom) == ["BBB|1 of 2 shown"]
    assert re.findall(r'data-header-top="([^"]*)"', dom) == ["0"]  # stuck to the top of the window


def test_chromium_screenshot_of_the_html_report_shows_tables_and_charts(report, tmp_path):
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1300,3000", report.as_uri(), profile=tmp_path / "profile")

    rgb = np.rint(imread(shot)[..., :3] * 255).astype(int)  # (height, width, 3)
    assert rgb.shape == (3000, 1300, 3)
    not_white = int(np.any(rgb != 255, axis=-1).sum())
    red = int(np.all(np.abs(rgb - NEXT_SESSION_RED) <= 30, axis=-1).sum())
    assert not_white > 0.02 * 1300 * 3000, "the screenshot is blank"
    assert red > 50, "no next-session forecast in the screenshot: the charts did not render"
