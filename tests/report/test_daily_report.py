"""The daily report, read from a migrated database on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import re
from datetime import date

import pytest
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.errors import UserError
from forecaster.report.content import WORSE
from forecaster.report.writer import write_report, write_reports
from forecaster.store.price_events import PriceEvent, record_events
from forecaster.store.schema import forecast_series, prediction_accuracy, predictions
from tests.support.fakes import UNKNOWN_TICKER, FaultySource
from tests.support.report_tables import PRESET, Tables, at, day, read_csv, table_cell, table_column, table_row
from tests.support.sessions import catch_up_daily


@pytest.fixture
def tables(migrated_engine) -> Tables:
    return Tables(migrated_engine)


@pytest.fixture
def reports(tmp_path):
    """The report directory (the SQLite file lives beside it, in tmp_path)."""
    return tmp_path / "reports"


@pytest.fixture
def report_day(tables: Tables) -> int:
    """Session 3 of a small watch list, in which every case of the report appears.

    AAA: closes 100, 102, 100, 101; forecasts 101, 99, 99 realised on sessions 1..3, then 103.
         model errors -1, -1, -2 (MAE 4/3); naive errors -2, +2, -1 (MAE 5/3); directions hit, hit, miss.
    BBB: listed the day before; its first forecast is not realised yet.
    CCC: forecasts further from the close than the last close, which never moved: skill undefined.
    DDD: failed at fetch in the day's run.
    """
    run = tables.run(3, status="partial", ok=3, failed=1, seconds=83)
    tables.history("AAA", [100, 102, 100, 101], [101, 99, 99, 103], run)
    tables.losses("AAA", 3, [0.9, 0.5, 0.25], run)
    tables.closes("BBB", {2: 50, 3: 51})
    tables.forecast("BBB", 3, 50.5, 51, run)
    tables.history("CCC", [10, 10, 10, 10], [11, 11, 11, 9], run)
    for n in (1, 2, 3):
        tables.closes("CCC", {n + 10: 10})  # a later close must not leak into the report of session 3
    tables.failure(run, "DDD", "fetch", "no data returned for DDD")
    return 3


def test_markdown_report_shows_each_forecast_with_its_change_latest_training_loss_and_skill(
    tables, report_day, reports
):
    path = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports)
    text = path.read_text()

    assert path == reports / "report-2024-01-04.md"
    assert "Forecasts made after the close of 2024-01-04, for 2024-01-05: 3 tickers." in text
    # One market, one session forecast from and one forecast for: said in the lead, not in every row.
    assert "| Ticker | Last close | Forecast | Change | Loss | n | Skill 20 | Skill 60 | MAPE | Hits | Flags |" in text
    assert table_row(text, "Tickers", "AAA")[:5] == ["AAA", "101.00", "103.00", "+1.98%", "0.2500"]
    assert table_row(text, "Tickers", "BBB") == ["BBB", "51.00", "50.50", "-0.98%", "n/a", "0", *["n/a"] * 4, ""]


def test_tickers_of_several_markets_and_sessions_show_theirs(tables, report_day, reports):
    tables.closes("LLL.L", {1: 80, 2: 81})
    tables.forecast("LLL.L", 2, 82, 81, tables.run(2))  # its market closed on session 3: its latest is from 2
    with tables.engine.begin() as c:
        c.execute(
            forecast_series.insert().values(
                preset=PRESET, ticker="LLL.L", first_as_of=day(2), created_at=at(2), calendar="XLON"
            )
        )

    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert table_row(text, "Tickers", "AAA")[:4] == ["AAA", "XNYS", "2024-01-04", "2024-01-05"]
    assert table_row(text, "Tickers", "LLL.L")[:4] == ["LLL.L", "XLON", "2024-01-03", "2024-01-04"]


def test_the_price_events_of_the_sessions_scored_are_listed_newest_first(tables, report_day, reports):
    with tables.engine.begin() as connection:
        record_events(
            [
                PriceEvent("AAA", day(2), "jump", "the close moved +60% and a second look confirmed it", 1.6),
                PriceEvent("DDD", day(3), "gap", "no close from the source 3 sessions after it"),
                PriceEvent("AAA", day(5), "restatement", "after the report's session: not shown", 0.99),
                PriceEvent("ZZZ", day(2), "late", "a ticker the report does not show"),
            ],
            connection=connection,
            seen_at=at(5),
        )

    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert table_column(text, "Price events") == ["DDD", "AAA"]
    assert table_row(text, "Price events", "AAA") == [
        "AAA",
        "2024-01-03",
        "jump",
        "1.6",
        "the close moved +60% and a second look confirmed it",
    ]


def test_a_report_without_price_events_says_so(tables, report_day, reports):
    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert "## Price events\n\nNo price event over the sessions this report scores." in text


def test_tickers_probably_delisted_have_a_section_after_the_runs_in_markdown_and_html(migrated_engine, reports):
    """ZZZ's last close is on 7 March; the source returns no rows for it over the six sessions after."""
    silent = trading_calendar(NYSE).sessions_between(date(2024, 3, 8), date(2024, 3, 15))
    catch_up_daily(migrated_engine, ["AAA", "ZZZ"], FaultySource(seed=3), [date(2024, 3, 6), date(2024, 3, 7)])
    catch_up_daily(migrated_engine, ["AAA", "ZZZ"], FaultySource(seed=3, failing=["ZZZ"]), silent)

    md, page, _ = write_reports(
        migrated_engine, as_of=silent[-1], preset=PRESET, formats=["md", "html"], out_dir=reports, charts=0
    )
    text, html = md.read_text(), page.read_text()

    assert table_column(text, "Probably delisted") == ["ZZZ"]
    assert table_row(text, "Probably delisted", "ZZZ") == ["ZZZ", "XNYS", "2024-03-07", "6", UNKNOWN_TICKER]
    assert text.index("## Runs") < text.index("## Probably delisted") < text.index("## Price events")
    assert '<a href="#delisted">Probably delisted</a>' in html and '<section id="delisted">' in html
    assert f'<tr><td>ZZZ</td><td>XNYS</td><td>2024-03-07</td><td class="r">6</td><td>{UNKNOWN_TICKER}</td></tr>' in html


def test_a_report_without_tickers_probably_delisted_has_no_such_section(tables, report_day, reports):
    """DDD returned no data in the day's run only: one session without data is not enough."""
    md, page, _ = write_reports(
        tables.engine, as_of=day(report_day), preset=PRESET, formats=["md", "html"], out_dir=reports, charts=0
    )

    assert "DDD failed at fetch: no data returned for DDD" in md.read_text()  # listed as any failure
    assert "Probably delisted" not in md.read_text()
    assert 'id="delisted"' not in page.read_text() and "Probably delisted" not in page.read_text()


def test_markdown_report_shows_trailing_accuracy_against_the_naive_forecast_in_percent(tables, report_day, reports):
    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    rows = {row["ticker"]: row for row in read_csv(reports / "report-2024-01-04.csv")}  # written with the markdown

    # MAPE mean(1/102, 1/100, 2/101) * 100, direction 2 of 3, skill (4/3) / (5/3), MAE 4/3, RMSE sqrt(2)
    assert table_row(text, "Tickers", "AAA")[5:] == ["3", "0.800", "0.800", "1.32%", "66.7%", ""]
    assert table_row(text, "Tickers", "BBB")[5:] == ["0", "n/a", "n/a", "n/a", "n/a", ""]
    assert table_row(text, "Tickers", "CCC")[5:] == ["3", "n/a", "n/a", "10.00%", "0.0%", ""]
    for window in (20, 60):
        assert float(rows["AAA"][f"mae_{window}"]) == pytest.approx(4 / 3)
        assert float(rows["AAA"][f"rmse_{window}"]) == pytest.approx(2**0.5)
        assert (rows["BBB"][f"n_{window}"], rows["BBB"][f"mae_{window}"]) == ("0", "")


def test_markdown_keeps_the_worst_and_best_of_a_long_ticker_table_and_points_to_the_csv_html_has_all(tables, reports):
    run = tables.run(3)
    for k in range(25):  # skill k / 25: model errors k / 25, naive errors 1
        tables.history(f"T{k:02d}", [100, 101, 102, 103], [101 + k / 25, 102 + k / 25, 103 + k / 25, 104], run)
    tables.closes("NEW", {3: 50})
    tables.forecast("NEW", 3, 51, 50, run)  # no skill yet: last, and left out of the markdown

    md, page, csv = write_reports(tables.engine, as_of=day(3), preset=PRESET, formats=["md", "html"], out_dir=reports)
    text = md.read_text()

    worst, best = [f"T{k:02d}" for k in range(24, 14, -1)], [f"T{k:02d}" for k in range(9, -1, -1)]
    assert table_column(text, "Tickers") == [*worst, "…", *best]
    assert (
        "The 10 worst and the 10 best by skill over the last 60 of 26 tickers: all of them, with every measure over "
        "both windows, are in [report-2024-01-04.csv](report-2024-01-04.csv)." in text
    )
    assert len(read_csv(csv)) == 26
    assert re.findall(r"<tr><td>(\w+)<td>", page.read_text()) == [f"T{k:02d}" for k in range(24, -1, -1)] + ["NEW"]


def test_a_model_worse_than_naive_is_flagged_and_listed_first(tables, reports):
    run = tables.run(24)
    closes = [100.0 + n for n in range(25)]  # naive errors 1 throughout
    tables.history("WWW", closes, [c + 2 for c in closes[1:]] + [130.0], run)  # errors 2: worse every session
    tables.history("GGG", closes, closes[1:] + [125.0], run)  # errors 0
    # Errors 1 (as naive) but 2 on the last 3: worse, on 3 forecasts that differ from naive's, too few to tell.
    tables.history("LLL", closes, [c + (2 if n >= 21 else 1) for n, c in enumerate(closes[1:])] + [125.0], run)

    text = write_report(tables.engine, as_of=day(24), preset=PRESET, fmt="md", out_dir=reports).read_text()

    def skill_and_flags(ticker: str) -> list[str]:
        return [table_cell(text, "Tickers", ticker, header) for header in ("Skill 20", "Flags")]

    assert skill_and_flags("WWW") == ["2.000", f"{WORSE} (20, 60)"]  # over the last 20 and the last 60
    assert skill_and_flags("LLL") == ["1.150", ""]
    assert skill_and_flags("GGG") == ["0.000", ""]
    assert table_column(text, "Tickers") == ["WWW", "LLL", "GGG"]


def test_every_table_lists_the_worst_skill_first_and_tickers_without_skill_last(tables, report_day, reports):
    run = tables.run(3)
    tables.history("ZZZ", [100, 101, 102, 103], [103, 104, 103, 104], run)  # skill 4/3

    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert table_column(text, "Tickers") == ["ZZZ", "AAA", "BBB", "CCC"]


def test_summary_counts_tickers_failures_and_skill_pooled_in_percent_of_price(tables, report_day, reports):
    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    # Pooled over AAA and CCC: absolute errors in % of the actual close, model over naive.
    model = 100 / 102 + 100 / 100 + 200 / 101 + 3 * 10.0
    naive = 200 / 102 + 200 / 100 + 100 / 101
    assert text.index("## Summary") < text.index("## Runs") < text.index("## Tickers")
    assert "3 tickers forecast, 1 failed: DDD." in text
    assert table_row(text, "Summary", "Tickers with realised forecasts") == [
        "Tickers with realised forecasts",
        "2 of 3",
        "2 of 3",
    ]
    assert table_row(text, "Summary", "Tickers flagged worse than naive (sign test)")[1:] == ["0 of 1", "0 of 1"]
    assert table_row(text, "Summary", "Pooled skill: MAPE / naive MAPE")[1:] == [f"{model / naive:.3f}"] * 2
    assert table_row(text, "Summary", "Median ticker skill: MAE / naive MAE")[1:] == ["0.800", "0.800"]
    assert table_row(text, "Summary", "Pooled direction hits")[1:] == ["33.3%", "33.3%"]  # AAA 2 of 3, CCC 0 of 3
    assert "Prediction intervals: none stored for these forecasts, so no coverage yet." in text
    assert "Coverage" not in text


def test_summary_names_failed_tickers_only_while_they_have_no_forecast(tables, report_day, reports):
    rerun = tables.run(report_day, ok=1)
    tables.failure(rerun, "EEE", "train", "loss is NaN")
    tables.failure(rerun, "AAA", "write", "database went away")  # AAA's forecast was written by the first run

    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert "3 tickers forecast, 2 failed: DDD, EEE." in text


def test_trailing_windows_count_only_the_latest_realised_forecasts(tables, reports):
    run = tables.run(29)
    # 30 sessions: the first 10 forecasts miss by 10, the last 20 (19 realised + tomorrow's) by 1.
    closes = [100.0] * 30
    tables.history("AAA", closes, [110.0] * 10 + [101.0] * 20, run)

    (row,) = read_csv(write_report(tables.engine, as_of=day(29), preset=PRESET, fmt="csv", out_dir=reports))

    assert (row["n_20"], float(row["mae_20"])) == ("20", pytest.approx(1.45))  # 1 miss of 10
    assert (row["n_60"], float(row["mae_60"])) == ("29", pytest.approx(119 / 29))  # 10 of 29


def test_runs_show_the_session_they_are_for_apart_from_when_they_ran(tables, reports):
    backfill = tables.run(3, kind="backfill", ran_after=40, seconds=2)
    tables.history("AAA", [100, 101, 102, 103], [101, 102, 103, 104], backfill)

    text = write_report(tables.engine, as_of=day(3), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert (
        "| Run | Market | For session | Kind | Status | Ran at (UTC) | Duration | Forecasts written | Failed | Waiting | Skipped |"
        in text
    )
    assert table_row(text, "Runs", str(backfill)) == [
        str(backfill),
        "XNYS",
        "2024-01-04",
        "backfill",
        "ok",
        "2024-02-10 22:30:00",
        "2.0 s",
        "0",
        "0",
        "0",
        "0",
    ]


def test_run_summary_shows_a_failed_run_with_its_reasons(tables, reports):
    failed = tables.run(3, status="failed", failed=2, seconds=4.25, error="2 of 2 tickers failed")
    tables.failure(failed, "AAA", "train", "loss is NaN after epoch 3")
    tables.failure(failed, "BBB", "fetch", "HTTP 404 | not found")
    tables.run(2, status="ok", ok=2)  # another day's run is not this day's summary

    text = write_report(tables.engine, as_of=day(3), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert table_row(text, "Runs", str(failed)) == [
        str(failed),
        "XNYS",
        "2024-01-04",
        "daily",
        "failed",
        "2024-01-04 22:30:00",
        "4.2 s",
        "0",
        "2",
        "0",
        "0",
    ]
    assert f"- run {failed} error: 2 of 2 tickers failed" in text
    assert f"- run {failed}: AAA failed at train: loss is NaN after epoch 3" in text
    assert f"- run {failed}: BBB failed at fetch: HTTP 404 \\| not found" in text
    assert "Forecasts made after the close of 2024-01-04, none stored: 0 tickers." in text
    assert "0 tickers forecast, 2 failed: AAA, BBB." in text
    assert len(re.findall(r"^\| \d+ \| XNYS \| 2024-01-0\d \| daily", text, flags=re.M)) == 1


def test_run_summary_shows_duration_partial_runs_and_tickers_waiting_for_a_close(tables, report_day, reports):
    still_running = tables.run(report_day, status="running", seconds=None, waiting=2)

    text = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports).read_text()

    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \| XNYS \| 2024-01-04 \| daily", line)]
    assert "| partial | 2024-01-04 22:30:00 | 1 min 23 s | 3 | 1 | 0 | 0 |" in rows[0]
    assert rows[1].startswith(f"| {still_running} | XNYS | 2024-01-04 | daily | running |")
    assert rows[1].endswith("| running | 0 | 0 | 2 | 0 |")
    assert "failed at fetch: no data returned for DDD" in text


def test_latest_session_is_reported_when_no_date_is_given(tables, report_day, reports):
    assert (
        write_report(tables.engine, as_of=None, preset=PRESET, fmt="md", out_dir=reports).name == "report-2024-01-04.md"
    )


def test_an_earlier_session_sees_nothing_that_came_after_it(tables, report_day, reports):
    text = write_report(tables.engine, as_of=day(2), preset=PRESET, fmt="md", out_dir=reports).read_text()

    # Last close, forecast, change, loss, n, skill over 20 and 60: 2 realised, model errors 1, 1, naive 2, 2
    assert table_row(text, "Tickers", "AAA")[1:8] == ["100.00", "99.00", "-1.00%", "n/a", "2", "0.500", "0.500"]
    assert "No run recorded for this session." in text


def test_report_numbers_agree_with_the_prediction_accuracy_view(tables, report_day, reports):
    v = prediction_accuracy.c
    with tables.engine.connect() as c:
        mae, hits = c.execute(
            sa.select(sa.func.avg(v.abs_error), sa.func.avg(v.direction_hit)).where(
                v.ticker == "AAA", v.target_session <= day(report_day), v.actual_close.is_not(None)
            )
        ).one()

    path = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="csv", out_dir=reports)
    row = next(r for r in read_csv(path) if r["ticker"] == "AAA")

    assert float(row["mae_20"]) == pytest.approx(float(mae))
    assert float(row["directional_accuracy_pct_20"]) == pytest.approx(100 * float(hits))


def test_csv_report_has_one_row_per_ticker_with_every_metric_in_percent(tables, report_day, reports):
    path = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="csv", out_dir=reports)
    rows = read_csv(path)

    assert path.name == "report-2024-01-04.csv"
    assert [r["ticker"] for r in rows] == ["AAA", "BBB", "CCC"]  # worst skill first; none last, by name
    accuracy = (
        "mae",
        "rmse",
        "mape_pct",
        "directional_accuracy_pct",
        "skill_ratio",
        "n_decided",
        "skill_sign_p",
        "worse_than_naive",
    )
    intervals = (
        "n_interval",
        "coverage_80_pct",
        "coverage_95_pct",
        "width_80_pct",
        "width_95_pct",
        "winkler_80_pct",
        "winkler_95_pct",
        "coverage_p",
        "coverage_off",
    )
    assert list(rows[0]) == [
        "as_of",
        "ticker",
        "calendar",
        "target_session",
        "last_close",
        "predicted_close",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
        "predicted_change",
        "predicted_change_pct",
        "training_loss",
        *(f"{m}_{w}" for w in (20, 60) for m in ("n", *accuracy, *intervals)),
    ]
    aaa, bbb, ccc = rows
    assert (aaa["as_of"], aaa["target_session"], aaa["n_20"], aaa["worse_than_naive_20"]) == (
        "2024-01-04",
        "2024-01-05",
        "3",
        "false",
    )
    assert float(aaa["skill_ratio_60"]) == pytest.approx(0.8)
    assert float(aaa["directional_accuracy_pct_60"]) == pytest.approx(200 / 3)
    assert float(aaa["mape_pct_60"]) == pytest.approx((100 / 102 + 100 / 100 + 200 / 101) / 3)
    assert (aaa["n_interval_20"], aaa["coverage_80_pct_20"], aaa["lower_80"]) == ("0", "", "")
    assert (bbb["n_20"], bbb["mae_20"], bbb["skill_ratio_20"], bbb["training_loss"]) == ("0", "", "", "")
    assert ccc["skill_ratio_20"] == ""  # naive forecast was perfect: the ratio is undefined
    assert not list(reports.glob("report-2024-01-04/*"))  # csv has no images


def test_md_references_its_charts_and_csv_by_relative_path_and_html_has_the_same_charts_inline(
    tables, report_day, reports
):
    md, page, csv = write_reports(
        tables.engine, as_of=day(report_day), preset=PRESET, formats=["md", "html"], out_dir=reports
    )

    md_images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text())
    html_images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page.read_text())
    assert md_images == [f"report-2024-01-04/close-{t}.png" for t in ("AAA", "BBB", "CCC")]
    assert [base64.b64decode(png) for png in html_images] == [(reports / src).read_bytes() for src in md_images]
    assert csv == reports / "report-2024-01-04.csv" and [r["ticker"] for r in read_csv(csv)] == ["AAA", "BBB", "CCC"]


def test_html_report_marks_flags_right_aligns_numbers_and_has_only_the_ticker_tables_script(
    tables, report_day, reports
):
    page = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="html", out_dir=reports).read_text()

    assert page.count("<script") == 1  # sorting and filtering the ticker table
    assert re.search(r"<[^>]*\son\w+=", page) is None  # no event handler attribute
    assert '<td class="flag">partial</td>' in page
    assert "<tr><td>AAA<td>101.00<td>103.00<td>+1.98%<td>0.2500" in page  # the ticker table: no closing tags
    assert '<td class="r">3</td>' in page  # numbers right-aligned: by class in small tables,
    assert "#tickers td:nth-child(2), #tickers td:nth-child(3)" in page  # by column in the ticker table
    assert re.search(r"<td>\d+</td>", page) is None
    for anchor in ("summary", "runs", "skill", "charts", "tickers"):
        assert f'<a href="#{anchor}">' in page and f'id="{anchor}"' in page


def test_writing_several_formats_at_once_gives_the_same_files_as_one_by_one(tables, report_day, reports, tmp_path):
    together = write_reports(
        tables.engine, as_of=day(report_day), preset=PRESET, formats=["md", "html", "csv"], out_dir=reports
    )
    apart = [
        write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt=fmt, out_dir=tmp_path / "apart")
        for fmt in ("md", "html", "csv")
    ]

    assert [p.name for p in together] == ["report-2024-01-04.md", "report-2024-01-04.html", "report-2024-01-04.csv"]
    assert [p.read_text() for p in together] == [p.read_text() for p in apart]


def test_rewriting_a_day_replaces_its_files_only(tables, report_day, reports):
    other_day = write_report(tables.engine, as_of=day(2), preset=PRESET, fmt="md", out_dir=reports)
    other_files = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    first = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports)
    with tables.engine.begin() as c:
        c.execute(predictions.delete().where(predictions.c.ticker == "CCC", predictions.c.as_of == day(report_day)))

    again = write_report(tables.engine, as_of=day(report_day), preset=PRESET, fmt="md", out_dir=reports)

    assert again == first
    assert "| CCC |" not in again.read_text()
    assert sorted(p.name for p in (reports / "report-2024-01-04").iterdir()) == ["close-AAA.png", "close-BBB.png"]
    assert {p: p.read_bytes() for p in other_files} == other_files
    assert other_day.exists()
    assert not [p for p in reports.rglob("*") if p.name.startswith(".")]  # no temporary file left behind


def test_a_ticker_with_unsafe_characters_gets_a_safe_image_name(tables, reports):
    run = tables.run(1)
    tables.history("^GSPC", [4000, 4010], [4005, 4020], run)

    text = write_report(tables.engine, as_of=day(1), preset=PRESET, fmt="md", out_dir=reports).read_text()

    (src,) = re.findall(r"\]\((report-2024-01-02/close-_GSPC-[0-9a-f]{8}\.png)\)", text)
    assert (reports / src).is_file()


def test_nothing_to_report_is_a_user_error(tables, reports):
    with pytest.raises(UserError, match="no forecasts of preset 'default' yet"):
        write_report(tables.engine, as_of=None, preset=PRESET, fmt="md", out_dir=reports)
    with pytest.raises(UserError, match="no forecasts of preset 'default' and no runs on 2024-01-04"):
        write_report(tables.engine, as_of=day(3), preset=PRESET, fmt="md", out_dir=reports)
    with pytest.raises(UserError, match="report format 'pdf'"):
        write_reports(tables.engine, as_of=day(3), preset=PRESET, formats=["md", "pdf"], out_dir=reports)
    with pytest.raises(UserError, match="charts per group -1"):
        write_report(tables.engine, as_of=day(3), preset=PRESET, fmt="md", out_dir=reports, charts=-1)
    assert not reports.exists()


def test_the_runs_section_names_the_first_20_failures_of_a_run_and_says_where_the_rest_are(tables, reports):
    run = tables.run(3, status="partial", ok=1, failed=25)
    tables.history("AAA", [100, 101, 102, 103], [101, 102, 103, 104], run)
    for n in range(25):
        tables.failure(run, f"F{n:02d}", "fetch", "no data")

    text = write_report(tables.engine, as_of=day(3), preset=PRESET, fmt="md", out_dir=reports).read_text()

    assert text.count("failed at fetch: no data") == 20
    assert f"- run {run}: and 5 more: SELECT * FROM run_failures WHERE run_id = {run}" in text
