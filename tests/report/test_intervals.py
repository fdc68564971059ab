"""Prediction intervals in the report: coverage, width and Winkler score per ticker and pooled, and the 80 % band."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from matplotlib.image import imread

from forecaster.model.intervals import PredictionInterval
from forecaster.report.content import COVERAGE_OFF
from forecaster.report.writer import write_report, write_reports
from forecaster.store.predictions import ForecastRow, save_forecasts
from forecaster.store.schema import prediction_accuracy
from tests.support.report_tables import PRESET, Tables, around, at, day, read_csv, table_row

#: The 80 % band: tab:blue at 20 % opacity over white.
BAND = (210, 228, 240)


@pytest.fixture
def tables(migrated_engine) -> Tables:
    return Tables(migrated_engine)


def write_forecasts(
    tables: Tables, ticker: str, closes: list[float], forecasts: list[tuple[float, bool]], run: int
) -> None:
    """Closes of sessions 0.., and after each session a forecast, with bounds at +-1 (80 %) and +-2 (95 %) or none,
    written the way the daily cycle writes them."""
    tables.closes(ticker, dict(enumerate(closes)))
    rows = [
        ForecastRow(
            ticker=ticker,
            preset=PRESET,
            as_of=day(n),
            target_session=day(n + 1),
            predicted_close=predicted,
            last_close=closes[n],
            interval=PredictionInterval(*around(predicted, 1, 2), method="test") if with_interval else None,
            run_id=run,
            created_at=at(n, 5),
        )
        for n, (predicted, with_interval) in enumerate(forecasts)
    ]
    with tables.engine.begin() as connection:
        save_forecasts(rows, connection=connection)


@pytest.fixture
def interval_day(tables: Tables) -> int:
    """Session 4; every close is 100 and every last close too.

    III: forecasts 100.5, 99.5, 102, 100 realised, then 101. At 80 % (+-1) the close falls
         in, in, 1 below, in: 75 % (5 points off: not flagged), Winkler 2, 2, 2 + 10, 2. At 95 % (+-2) always in
         (once on the bound): 100 % (5 points off), Winkler 4.
    JJJ: forecasts 102, 102, 100, 100, then 100: 80 % coverage 50 % (flagged), Winkler 12, 12, 2, 2.
    KKK: forecasts without intervals.
    """
    run = tables.run(4)
    write_forecasts(tables, "III", [100] * 5, [(100.5, True), (99.5, True), (102, True), (100, True), (101, True)], run)
    write_forecasts(tables, "JJJ", [100] * 5, [(102, True), (102, True), (100, True), (100, True), (100, True)], run)
    write_forecasts(tables, "KKK", [100] * 5, [(101, False)] * 5, run)
    return 4


def test_interval_tables_show_coverage_width_and_winkler_score_in_percent(tables, interval_day, tmp_path):
    text = write_report(tables.engine, as_of=day(interval_day), preset=PRESET, fmt="md", out_dir=tmp_path).read_text()

    for window in (20, 60):
        section = f"Prediction intervals over the last {window} realised forecasts"
        assert table_row(text, section, "III") == [
            "III",
            "4",
            "75.0%",
            "100.0%",
            "2.00%",
            "4.00%",
            "4.50%",
            "4.00%",
            "",
        ]
        assert table_row(text, section, "JJJ") == [
            "JJJ",
            "4",
            "50.0%",
            "100.0%",
            "2.00%",
            "4.00%",
            "7.00%",
            "4.00%",
            COVERAGE_OFF,
        ]
        assert table_row(text, section, "KKK") == ["KKK", "0", *["n/a"] * 6, ""]


def test_forecasts_show_the_next_sessions_intervals(tables, interval_day, tmp_path):
    text = write_report(tables.engine, as_of=day(interval_day), preset=PRESET, fmt="md", out_dir=tmp_path).read_text()

    assert (
        "| Ticker | Market | From | For | Last close | Forecast | Change | Change % | 80 % interval | 95 % interval "
        "| Training loss | Skill (60) |" in text
    )
    assert table_row(text, "Forecasts", "III")[8:10] == ["100.00 – 102.00", "99.00 – 103.00"]
    assert table_row(text, "Forecasts", "KKK")[8:10] == ["n/a", "n/a"]


def test_summary_pools_coverage_over_every_forecast_with_an_interval(tables, interval_day, tmp_path):
    text = write_report(tables.engine, as_of=day(interval_day), preset=PRESET, fmt="md", out_dir=tmp_path).read_text()

    def summary(measure: str) -> list[str]:
        return table_row(text, "Summary", measure)[1:]

    assert summary("Coverage of the 80 % interval") == ["62.5%", "62.5%"]  # 5 of 8
    assert summary("Coverage of the 95 % interval") == ["100.0%", "100.0%"]
    assert summary("Mean width of the 80 % interval") == ["2.00%", "2.00%"]
    assert summary("Winkler score, 80 % interval") == ["5.75%", "5.75%"]  # (18 + 28) / 8
    assert summary("Tickers with coverage off by more than 5 points") == ["1 of 2", "1 of 2"]


def test_csv_interval_columns_agree_with_the_prediction_accuracy_view(tables, interval_day, tmp_path):
    v = prediction_accuracy.c
    with tables.engine.connect() as c:
        covered, score = c.execute(
            sa.select(sa.func.avg(v.covered_80), sa.func.avg(100.0 * v.winkler_80 / v.last_close)).where(
                v.ticker == "JJJ", v.actual_close.is_not(None)
            )
        ).one()

    path = write_report(tables.engine, as_of=day(interval_day), preset=PRESET, fmt="csv", out_dir=tmp_path)
    rows = {row["ticker"]: row for row in read_csv(path)}

    assert float(rows["JJJ"]["coverage_80_pct_20"]) == pytest.approx(100 * float(covered))
    assert float(rows["JJJ"]["winkler_80_pct_20"]) == pytest.approx(float(score))
    assert (rows["JJJ"]["coverage_off_20"], rows["III"]["coverage_off_20"], rows["KKK"]["coverage_off_20"]) == (
        "true",
        "false",
        "",
    )
    assert (rows["III"]["lower_80"], rows["III"]["upper_95"]) == ("100.0", "103.0")


def test_charts_show_the_80_percent_band_only_where_there_are_intervals(tables, interval_day, tmp_path):
    md, _ = write_reports(
        tables.engine, as_of=day(interval_day), preset=PRESET, formats=["md", "html"], out_dir=tmp_path
    )

    def band_pixels(ticker: str) -> int:
        rgb = np.rint(imread(tmp_path / "report-2024-01-05" / f"close-{ticker}.png")[..., :3] * 255).astype(int)
        return int(np.all(np.abs(rgb - BAND) <= 3, axis=-1).sum())

    assert band_pixels("III") > 20 * band_pixels("KKK")
    assert "III: skill n/a over the last 60, n/a over the last 20; over the last 60, MAPE" in md.read_text()
    assert "80 % interval coverage 75.0%" in md.read_text()
