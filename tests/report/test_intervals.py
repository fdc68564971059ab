"""Prediction intervals in the report: coverage, width and Winkler score per ticker and pooled, and the bands."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from matplotlib.image import imread

from forecaster.model.intervals import PredictionInterval
from forecaster.report.plots import BAND_COLOURS
from forecaster.report.writer import write_report, write_reports
from forecaster.store.predictions import ForecastRow, save_forecasts
from forecaster.store.schema import prediction_accuracy
from tests.support.report_tables import PRESET, Tables, around, at, day, read_csv, table_cell, table_row


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
    JJJ: forecasts 102, 102, 100, 100, then 100: 80 % coverage 50 %, Winkler 12, 12, 2, 2 (on 4 forecasts, not
         beyond chance: not flagged; tests/report/test_metrics.py flags with enough of them).
    KKK: forecasts without intervals.
    """
    run = tables.run(4)
    write_forecasts(tables, "III", [100] * 5, [(100.5, True), (99.5, True), (102, True), (100, True), (101, True)], run)
    write_forecasts(tables, "JJJ", [100] * 5, [(102, True), (102, True), (100, True), (100, True), (100, True)], run)
    write_forecasts(tables, "KKK", [100] * 5, [(101, False)] * 5, run)
    return 4


def test_the_ticker_table_shows_coverage_width_and_winkler_score_in_percent(tables, interval_day, tmp_path):
    text = write_report(tables.engine, as_of=day(interval_day), preset=PRESET, fmt="md", out_dir=tmp_path).read_text()
    csv = {row["ticker"]: row for row in read_csv(tmp_path / "report-2024-01-05.csv")}

    def cells(ticker: str) -> list[str]:
        return [
            table_cell(text, "Tickers", ticker, h) for h in ("Coverage 80", "Coverage 95", "Width 80", "Winkler 80")
        ]

    assert cells("III") == ["75.0%", "100.0%", "2.00%", "4.50%"]
    assert cells("JJJ") == ["50.0%", "100.0%", "2.00%", "7.00%"]
    assert cells("KKK") == ["n/a"] * 4
    assert [table_cell(text, "Tickers", t, "Flags") for t in ("III", "JJJ", "KKK")] == ["", "", ""]
    # The 95 % interval's width and score, and the last 20, are in the CSV.
    for window in (20, 60):
        assert [float(csv["JJJ"][f"{m}_95_pct_{window}"]) for m in ("width", "winkler")] == [4.0, 4.0]
        assert float(csv["JJJ"][f"coverage_80_pct_{window}"]) == 50.0


def test_forecasts_show_the_next_sessions_intervals(tables, interval_day, tmp_path):
    text = write_report(tables.engine, as_of=day(interval_day), preset=PRESET, fmt="md", out_dir=tmp_path).read_text()

    assert (
        "| Ticker | Last close | Forecast | Change | 80 % interval | 95 % interval | Loss | n | Skill 20 | Skill 60 "
        "| MAPE | Hits | Coverage 80 | Coverage 95 | Width 80 | Winkler 80 | Flags |" in text
    )
    assert [table_cell(text, "Tickers", "III", f"{level} % interval") for level in (80, 95)] == [
        "100.00–102.00",
        "99.00–103.00",
    ]
    assert [table_cell(text, "Tickers", "KKK", f"{level} % interval") for level in (80, 95)] == ["n/a", "n/a"]


def test_summary_pools_coverage_over_every_forecast_with_an_interval(tables, interval_day, tmp_path):
    text = write_report(tables.engine, as_of=day(interval_day), preset=PRESET, fmt="md", out_dir=tmp_path).read_text()

    def summary(measure: str) -> list[str]:
        return table_row(text, "Summary", measure)[1:]

    assert summary("Coverage of the 80 % interval") == ["62.5%", "62.5%"]  # 5 of 8
    assert summary("Coverage of the 95 % interval") == ["100.0%", "100.0%"]
    assert summary("Mean width of the 80 % interval") == ["2.00%", "2.00%"]
    assert summary("Winkler score, 80 % interval") == ["5.75%", "5.75%"]  # (18 + 28) / 8
    assert summary("Tickers with coverage off (binomial test)") == ["0 of 2", "0 of 2"]


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
        "false",
        "false",
        "",
    )
    assert (rows["III"]["lower_80"], rows["III"]["upper_95"]) == ("100.0", "103.0")


def test_charts_show_the_80_and_95_percent_bands_only_where_there_are_intervals(tables, interval_day, tmp_path):
    md, _ = write_reports(tables.engine, as_of=day(interval_day), preset=PRESET, formats=["md"], out_dir=tmp_path)

    def band_pixels(ticker: str, level: int) -> int:
        rgb = np.rint(imread(tmp_path / "report-2024-01-05" / f"close-{ticker}.png")[..., :3] * 255).astype(int)
        colour = [int(BAND_COLOURS[level][i : i + 2], 16) for i in (1, 3, 5)]
        return int(np.all(np.abs(rgb - colour) <= 3, axis=-1).sum())

    for level in (80, 95):
        assert band_pixels("III", level) > 20 * max(1, band_pixels("KKK", level))
    assert "III: forecast change +1.00%; skill n/a over the last 60, n/a over the last 20; over the last 60" in (
        md.read_text()
    )
    assert "80 % interval coverage 75.0%" in md.read_text()
