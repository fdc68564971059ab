"""The report's charts: which tickers get one, skill over time, drawn once for every format, readable size."""

from __future__ import annotations

import re

import pytest
from matplotlib.image import imread

import forecaster.report.charts as charts
from forecaster.cli import main
from forecaster.report.plots import DPI, FONT_PT
from forecaster.report.writer import write_report, write_reports
from tests.support.report_tables import PRESET, Tables, day, table_column

IMAGE = re.compile(r"!\[[^\]]*\]\(report-[0-9-]+/([^)]+)\)")


@pytest.fixture
def tables(migrated_engine) -> Tables:
    return Tables(migrated_engine)


@pytest.fixture
def many_tickers(tables: Tables) -> int:
    """Session 3: T1..T8 forecast with skill 0.1 .. 0.8 (model error k/10, naive error 1); FFF forecast until
    the day before, then failed; GGG failed, never forecast."""
    run = tables.run(3, status="partial", ok=8, failed=2)
    for k in range(1, 9):
        e = k / 10
        tables.history(f"T{k}", [100, 101, 102, 103], [101 + e, 102 + e, 103 + e, 104], run)
    tables.closes("FFF", {0: 50, 1: 51, 2: 52, 3: 53})
    for n in range(3):
        tables.forecast("FFF", n, 51 + n, 50 + n, run)
    tables.failure(run, "FFF", "train", "loss is NaN")
    tables.failure(run, "GGG", "fetch", "no data returned for GGG")
    return 3


def test_with_many_tickers_only_the_worst_best_and_failed_are_charted_but_all_are_tabled(
    tables, many_tickers, tmp_path
):
    text = write_report(
        tables.engine, as_of=day(many_tickers), preset=PRESET, fmt="md", out_dir=tmp_path, charts=2
    ).read_text()

    charted = text.split("## Charts", 1)[1].split("\n## Forecasts", 1)[0]
    assert re.findall(r"^### (.+)$", charted, flags=re.M) == [
        "The 2 worst by skill over the last 60",
        "The 2 best by skill over the last 60",
        "Failed in this session (their history)",
    ]
    assert IMAGE.findall(charted) == [f"close-{t}.png" for t in ("T8", "T7", "T1", "T2", "FFF")]
    assert "5 of 10 tickers charted." in charted
    assert "FFF: failed at train: loss is NaN" in charted
    assert table_column(text, "Forecasts") == [f"T{k}" for k in range(8, 0, -1)]
    assert "8 tickers forecast, 2 failed: FFF, GGG." in text


def test_with_at_most_twice_the_chart_count_every_ticker_is_charted(tables, many_tickers, tmp_path):
    text = write_report(
        tables.engine, as_of=day(many_tickers), preset=PRESET, fmt="md", out_dir=tmp_path, charts=4
    ).read_text()

    assert "### All tickers, worst skill first" in text
    assert IMAGE.findall(text) == [f"close-T{k}.png" for k in range(8, 0, -1)] + ["close-FFF.png"]


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
    write_report(tables.engine, as_of=day(many_tickers), preset=PRESET, fmt="html", out_dir=tmp_path)

    height, width, _ = imread(tmp_path / "report-2024-01-04" / "close-T1.png").shape

    assert (width, height) == (1200, 360)
    assert FONT_PT * DPI / 72 >= 11  # tick labels of at least 11 px


def test_report_command_writes_several_formats_with_a_chart_count(sqlite_url, tmp_path, restored_logging, capsys):
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
            "--out",
            str(tmp_path / "out"),
        ]
    )

    assert code == 0
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "out" / f"report-2024-01-04.{fmt}") for fmt in ("md", "html", "csv")
    ]
    assert sorted(p.name for p in (tmp_path / "out" / "report-2024-01-04").iterdir()) == [
        "close-T1.png",
        "close-T5.png",
    ]
