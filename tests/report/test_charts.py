"""The report's charts: which tickers get one and why, skill over time, drawn once for every format, what a chart
shows (both bands, a failure, the loss from zero), readable size."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex
from matplotlib.image import imread

import forecaster.report.charts as charts
from forecaster.cli import main
from forecaster.report.data import FLAG_COLUMNS, MAX_CHARTS, NAMED_GROUP, ChartGroup, chart_groups
from forecaster.report.plots import (
    BAND_COLOURS,
    DPI,
    FAILED_COLOUR,
    FONT_PT,
    NEXT_COLOUR,
    TickerSeries,
    _TickerFigure,
    ticker_pngs,
)
from forecaster.report.writer import write_report, write_reports
from tests.support.report_tables import PRESET, Tables, day, table_column

IMAGE = re.compile(r"!\[[^\]]*\]\(report-[0-9-]+/([^)]+)\)")


@pytest.fixture
def tables(migrated_engine) -> Tables:
    return Tables(migrated_engine)


@pytest.fixture
def many_tickers(tables: Tables) -> int:
    """Session 3: T1..T8 forecast with skill 0.1 .. 0.8 (model error k/10, naive error 1), each for a move of +1
    from its last close but T4 (+6) and T5 (-5); FFF forecast until the day before, then failed; GGG failed,
    never forecast."""
    run = tables.run(3, status="partial", ok=8, failed=2)
    for k in range(1, 9):
        e = k / 10
        move = {4: 6, 5: -5}.get(k, 1)
        tables.history(f"T{k}", [100, 101, 102, 103], [101 + e, 102 + e, 103 + e, 103 + move], run)
    tables.closes("FFF", {0: 50, 1: 51, 2: 52, 3: 53})
    for n in range(3):
        tables.forecast("FFF", n, 51 + n, 50 + n, run)
    tables.failure(run, "FFF", "train", "loss is NaN")
    tables.failure(run, "GGG", "fetch", "no data returned for GGG")
    return 3


def headings(markdown: str) -> list[str]:
    return re.findall(r"^### (.+)$", markdown, flags=re.M)


def test_with_many_tickers_the_failed_biggest_moves_worst_and_best_are_charted_but_all_are_tabled(
    tables, many_tickers, tmp_path
):
    text = write_report(
        tables.engine, as_of=day(many_tickers), preset=PRESET, fmt="md", out_dir=tmp_path, charts=2
    ).read_text()

    charted = text.split("## Charts", 1)[1].split("\n## Tickers", 1)[0]
    assert headings(charted) == [
        "Failed in this session (their history)",
        "The 2 biggest predicted moves, up or down",
        "The 2 worst by skill over the last 60",
        "The 2 best by skill over the last 60",
    ]
    assert IMAGE.findall(charted) == [f"close-{t}.png" for t in ("FFF", "T4", "T5", "T8", "T7", "T1", "T2")]
    assert "7 of 10 tickers charted: at most 30 besides those named" in charted
    assert "FFF: failed at train: loss is NaN" in charted
    assert table_column(text, "Tickers") == [f"T{k}" for k in range(8, 0, -1)]
    assert "8 tickers forecast, 2 failed: FFF, GGG." in text


def test_flagged_and_named_tickers_are_charted_once_each_in_the_first_group_they_are_in(tables, tmp_path):
    """25 sessions: WWW's errors are twice the naive forecast's every session (flagged worse, the worst);
    G1..G5 beat it (skill g/10). Tomorrow's moves: G2 +10, G5 +5, G4 +4, G3 +3, G1 +2, WWW +1."""
    run = tables.run(24)
    closes = [100.0 + n for n in range(25)]
    tables.history("WWW", closes, [c + 2 for c in closes[1:]] + [closes[-1] + 1], run)
    for g, move in zip(range(1, 6), (2, 10, 3, 4, 5), strict=True):
        tables.history(f"G{g}", closes, [c + g / 10 for c in closes[1:]] + [closes[-1] + move], run)

    md, page, _ = write_reports(
        tables.engine, as_of=day(24), preset=PRESET, formats=["md", "html"], out_dir=tmp_path, charts=2,
        named=["G3", "NOPE"],
    )  # fmt: skip
    text, html = md.read_text(), page.read_text()

    assert headings(text) == [
        "Named to be charted always",  # NOPE is not in the report
        "Flagged, worst skill first: 1 of 1",
        "The 2 biggest predicted moves, up or down",
        "The 2 worst by skill over the last 60",
        "The 2 best by skill over the last 60",
    ]
    assert IMAGE.findall(text) == ["skill.png"] + [f"close-{t}.png" for t in ("G3", "WWW", "G2", "G5", "G1")]
    assert "Charted above: WWW, G5." in text and "Charted above: G2." in text
    assert html.count('<figure id="close-WWW">') == 1
    assert '<p>Charted above: <a href="#close-WWW">WWW</a>, <a href="#close-G5">G5</a>.</p>' in html


def test_at_most_thirty_tickers_are_charted_besides_the_named_ones():
    n = 200
    tickers = pl.DataFrame(
        {
            "ticker": [f"T{i:03d}" for i in range(n)],
            "predicted_change_pct": [float(n - i) for i in range(n)],
            "skill_ratio_60": [2.0 - i / n for i in range(n)],
            **{flag: [True] * n for flag in FLAG_COLUMNS},
        }
    )

    groups = chart_groups(tickers, [f"F{i}" for i in range(50)], 20, named=["T150", "T151"])

    charted = {ticker for group in groups for ticker in group.tickers}
    assert groups[0] == ChartGroup(NAMED_GROUP, ["T150", "T151"])
    assert len(charted - {"T150", "T151"}) == MAX_CHARTS == 30
    assert [group.title for group in groups[1:3]] == [
        "Failed in this session (their history): 20 of 50",
        "Flagged, worst skill first: 10 of 200",  # 10 more fit
    ]


def test_with_at_most_twice_the_chart_count_every_ticker_is_charted(tables, many_tickers, tmp_path):
    text = write_report(
        tables.engine, as_of=day(many_tickers), preset=PRESET, fmt="md", out_dir=tmp_path, charts=4
    ).read_text()

    assert "### All tickers, worst skill first" in text
    assert IMAGE.findall(text) == [f"close-T{k}.png" for k in range(8, 0, -1)] + ["close-FFF.png"]
    assert "9 of 10 tickers charted: every ticker forecast, then those that failed" in text


def test_skill_over_time_is_charted_once_there_are_twenty_realised_forecasts(tables, many_tickers, tmp_path):
    early = write_report(tables.engine, as_of=day(many_tickers), preset=PRESET, fmt="md", out_dir=tmp_path)
    run = tables.run(24)
    tables.history("LONG", [100.0 + n % 3 for n in range(25)], [101.0] * 25, run)

    later = write_report(tables.engine, as_of=day(24), preset=PRESET, fmt="md", out_dir=tmp_path)

    assert "Skill over time needs 20 realised forecasts: none yet." in early.read_text()
    assert not (tmp_path / "report-2024-01-04" / "skill.png").exists()
    assert "![Skill over time](report-2024-01-25/skill.png)" in later.read_text()
    assert (tmp_path / "report-2024-01-25" / "skill.png").read_bytes().startswith(b"\x89PNG")


def test_charts_are_drawn_once_for_every_format(tables, many_tickers, tmp_path, monkeypatch):
    drawn: list[str] = []
    original = charts.ticker_pngs

    def counting(series):
        for ticker, png in original(series):
            drawn.append(ticker)
            yield ticker, png

    monkeypatch.setattr(charts, "ticker_pngs", counting)

    write_reports(
        tables.engine, as_of=day(many_tickers), preset=PRESET, formats=["md", "html", "csv"], out_dir=tmp_path
    )

    assert sorted(drawn) == sorted([f"T{k}" for k in range(1, 9)] + ["FFF"])


def test_charts_are_the_width_of_the_page_with_readable_text(tables, many_tickers, tmp_path):
    write_report(tables.engine, as_of=day(many_tickers), preset=PRESET, fmt="md", out_dir=tmp_path)

    height, width, _ = imread(tmp_path / "report-2024-01-04" / "close-T1.png").shape

    assert (width, height) == (1200, 360)
    assert FONT_PT * DPI / 72 >= 11  # tick labels of at least 11 px


SESSIONS = [date(2024, 1, 1) + timedelta(days=n) for n in range(30)]


def series(*, failure: str | None = None, intervals: bool = True) -> TickerSeries:
    """30 sessions of closes near 100 with their forecasts; the last one pending unless the ticker failed."""
    actual: list[float | None] = [100.0 + n % 5 for n in range(30)]
    if failure is None:
        actual[-1] = None
    predicted = [100.5 + n % 4 for n in range(30)]
    bounds = [[p + d for p in predicted] if intervals else [None] * 30 for d in (-1, 1, -2, 2)]
    return TickerSeries("XYZ", SESSIONS, actual, predicted, *bounds, SESSIONS, [0.70 + n % 3 / 100 for n in range(30)],
                        failure=failure)  # fmt: skip


def rgb(colour: str) -> list[int]:
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def pixels(png: bytes, colour: str, tolerance: int = 3) -> int:
    """How many pixels of the PNG are within `tolerance` of `colour` ("#rrggbb") on every channel."""
    image = np.rint(imread(io.BytesIO(png))[..., :3] * 255).astype(int)
    return int(np.all(np.abs(image - rgb(colour)) <= tolerance, axis=-1).sum())


def test_a_chart_shows_the_95_percent_band_lighter_under_the_80_percent_one():
    [(_, banded), (_, bare)] = ticker_pngs([series(), series(intervals=False)])

    for level in (80, 95):
        # Without intervals only the blue line's anti-aliased edges come near the band's colour.
        assert pixels(banded, BAND_COLOURS[level]) > 10 * pixels(bare, BAND_COLOURS[level])
    assert sum(rgb(BAND_COLOURS[95])) > sum(rgb(BAND_COLOURS[80]))  # lighter


def test_a_failed_tickers_chart_says_it_failed_and_shows_no_next_session():
    [(_, failed), (_, forecast)] = ticker_pngs([series(failure="failed at train: loss is NaN"), series()])

    next_red = to_hex(NEXT_COLOUR)
    assert pixels(failed, FAILED_COLOUR, tolerance=20) > 300  # its title and "no forecast", in dark red
    assert pixels(failed, next_red, tolerance=20) == 0  # no next-session point, in the chart or the legend
    assert pixels(forecast, next_red, tolerance=20) > 50
    assert pixels(forecast, FAILED_COLOUR, tolerance=20) == 0


def test_the_loss_panel_starts_at_zero():
    figure = _TickerFigure()

    figure.png(series())

    assert figure.loss.get_ylim()[0] == 0
    assert figure.loss.get_ylim()[1] > 0.72


def test_report_command_writes_several_formats_with_a_chart_count_and_named_charts(
    sqlite_url, tmp_path, restored_logging, capsys
):
    from forecaster.store.database import make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    day_ = Tables(engine)
    run = day_.run(3)
    for k in range(1, 6):
        day_.history(f"T{k}", [100, 101, 102, 103], [101 + k / 10, 102, 103, 104], run)
    engine.dispose()

    code = main(
        [
            "report",
            "--database-url",
            sqlite_url,
            "--preset",
            PRESET,
            "--format",
            "md,html,csv",
            "--charts",
            "1",
            "--chart",
            "t3",
            "--out",
            str(tmp_path / "out"),
        ]
    )

    assert code == 0
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "out" / f"report-2024-01-04.{fmt}") for fmt in ("md", "html", "csv")
    ]
    # T3 named; T5 the worst and, all moves being equal, the first of the biggest; T1 the best.
    assert sorted(p.name for p in (tmp_path / "out" / "report-2024-01-04").iterdir()) == [
        "close-T1.png",
        "close-T3.png",
        "close-T5.png",
    ]


def test_tickers_named_in_the_settings_are_charted_always(sqlite_url, tmp_path, restored_logging, monkeypatch):
    from forecaster.store.database import make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    day_ = Tables(engine)
    run = day_.run(3)
    for k in range(1, 6):
        day_.history(f"T{k}", [100, 101, 102, 103], [101 + k / 10, 102, 103, 104], run)
    engine.dispose()
    monkeypatch.setenv("FORECASTER_REPORT_CHARTS", "T2, T4")

    main(["report", "--database-url", sqlite_url, "--preset", PRESET, "--charts", "1", "--out", str(tmp_path)])

    text = (tmp_path / "report-2024-01-04.md").read_text()
    assert headings(text)[0] == "Named to be charted always"
    assert IMAGE.findall(text)[:2] == ["close-T2.png", "close-T4.png"]
