"""What the report says, format-neutral: titles, sentences and table cells, rendered alike in markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from forecaster.report.charts import Charts
from forecaster.report.data import RANK_WINDOW, SKILL_WINDOW, WINDOWS, ReportData
from forecaster.report.metrics import COVERAGE_TOLERANCE, LEVELS
from forecaster.store.runs import RunRecord

NA = "n/a"
WORSE = "WORSE THAN NAIVE"
COVERAGE_OFF = "COVERAGE OFF"
#: Cells that mark a problem (HTML shows them in red).
FLAGS = (WORSE, COVERAGE_OFF, "failed", "partial", "interrupted")
#: The summary names at most this many failed tickers; the Runs section lists them all.
FAILED_NAMED = 20
#: The Price events section lists at most this many, newest first.
EVENTS_SHOWN = 50


@dataclass(frozen=True)
class Section:
    anchor: str  # HTML id
    title: str
    intro: str
    headers: tuple[str, ...] = ()
    align: str = ""  # one letter per column: "l" for text, "r" for numbers
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()  # bullet points after the table


def fmt(value: object, spec: str, suffix: str = "") -> str:
    """A number (polars aggregates are typed loosely) in `spec`, or NA for None."""
    return NA if value is None else f"{value:{spec}}{suffix}"


def title(data: ReportData) -> str:
    return f"Forecast report {data.as_of.isoformat()} (preset {data.preset})"


def lead(data: ReportData) -> str:
    targets = sorted({d.isoformat() for d in data.tickers["target_session"]})
    target = f"for {', '.join(targets)}" if targets else "none stored"
    return f"Forecasts made after the close of {data.as_of.isoformat()}, {target}: {data.tickers.height} tickers."


def overview(data: ReportData) -> list[Section]:
    """The sections above the charts: summary, runs, the tickers probably delisted (when any) and price events."""
    delisted = [_delisted(data)] if data.delisted else []
    return [_summary(data), _runs(data), *delisted, _price_events(data)]


def tables(data: ReportData) -> list[Section]:
    """The per-ticker tables, every ticker in the order of data.tickers."""
    result = [_forecasts(data)] + [_accuracy(data, w) for w in WINDOWS]
    if data.has_intervals:
        result += [_intervals(data, w) for w in WINDOWS]
    return result


def _summary(data: ReportData) -> Section:
    failures = list(data.failures)
    failed = f"{len(failures)} failed: {', '.join(failures[:FAILED_NAMED])}" if failures else "none failed"
    if len(failures) > FAILED_NAMED:
        failed += f" and {len(failures) - FAILED_NAMED} more (see Runs)"
    t = data.tickers

    def count(column: str, of: str) -> tuple[str, ...]:
        return tuple(f"{int(t[f'{column}_{w}'].sum())} of {t[f'{of}_{w}'].is_not_null().sum()}" for w in WINDOWS)

    def pooled(name: str, spec: str, suffix: str = "") -> tuple[str, ...]:
        return tuple(fmt(data.pooled[w][name], spec, suffix) for w in WINDOWS)

    rows = [
        ("Tickers with realised forecasts", *(f"{int((t[f'n_{w}'] > 0).sum())} of {t.height}" for w in WINDOWS)),
        ("Tickers worse than naive (skill above 1)", *count("worse_than_naive", "skill_ratio")),
        ("Pooled skill: MAPE / naive MAPE", *pooled("skill_ratio", ".3f")),
        ("Median ticker skill: MAE / naive MAE", *(fmt(t[f"skill_ratio_{w}"].median(), ".3f") for w in WINDOWS)),
        ("Pooled MAPE", *pooled("mape_pct", ".2f", "%")),
        ("Pooled direction hits", *pooled("directional_accuracy_pct", ".1f", "%")),
    ]
    if data.has_intervals:
        for label, name, spec in (
            ("Coverage of the {} % interval", "coverage_{}_pct", ".1f"),
            ("Mean width of the {} % interval", "width_{}_pct", ".2f"),
            ("Winkler score, {} % interval", "winkler_{}_pct", ".2f"),
        ):
            rows += [(label.format(level), *pooled(name.format(level), spec, "%")) for level in LEVELS]
        off = f"Tickers with coverage off by more than {COVERAGE_TOLERANCE:g} points"
        rows.append((off, *count("coverage_off", "coverage_80_pct")))
    forecast = f"{data.tickers.height} ticker{'' if data.tickers.height == 1 else 's'} forecast"
    intervals = (
        "Interval widths and Winkler scores are in % of the last close."
        if data.has_intervals
        else "Prediction intervals: none stored for these forecasts, so no coverage yet."
    )
    return Section(
        "summary",
        "Summary",
        f"{forecast}, {failed}. Over each ticker's last 20 and 60 realised forecasts "
        "(pooled: all tickers' forecasts together, each in % of its price). "
        f"Skill is MAE over the MAE of the naive forecast (the last close): below 1 the model beats it. {intervals}",
        ("Measure", *(f"Last {w}" for w in WINDOWS)),
        "l" + "r" * len(WINDOWS),
        tuple(rows),
    )


def _duration(run: RunRecord) -> str:
    if run.finished_at is None:  # still running, or the process died before recording its end
        return "running" if run.status == "running" else NA
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _runs(data: ReportData) -> Section:
    records = [run.record for run in data.runs]
    notes = [f"run {r.id} error: {r.error}" for r in records if r.error]
    notes += [f"run {f.run_id}: {f.ticker} failed at {f.stage}: {f.reason}" for run in data.runs for f in run.failures]
    return Section(
        "runs",
        "Runs",
        (
            f"Runs that forecast from the close of {data.as_of.isoformat()} (For session); Ran at is when each "
            "started, which for a backfill is long after its session."
        )
        if data.runs
        else "No run recorded for this session.",
        (
            "Run",
            "Market",
            "For session",
            "Kind",
            "Status",
            "Ran at (UTC)",
            "Duration",
            "Forecasts written",
            "Failed",
            "Waiting",
            "Skipped",
        )
        if data.runs
        else (),
        "rlllllrrrrr",
        tuple(
            (
                str(r.id),
                r.calendar or NA,
                r.as_of.isoformat() if r.as_of else NA,
                r.kind,
                r.status,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                _duration(r),
                str(r.tickers_ok),
                str(r.tickers_failed),
                str(r.tickers_waiting),
                str(r.tickers_skipped),
            )
            for r in records
        ),
        tuple(notes),
    )


def _delisted(data: ReportData) -> Section:
    return Section(
        "delisted",
        "Probably delisted",
        "Tickers the source has returned no data for over many sessions in a row (a rate limit or a network "
        "failure does not count): delisted or renamed, probably. Drop or rename them in the watch list.",
        ("Ticker", "Market", "Last close", "Sessions without data", "Latest reason"),
        "lllrl",
        tuple(
            (
                t.ticker,
                t.calendar,
                t.last_close.isoformat() if t.last_close else NA,
                str(t.sessions_without_data),
                t.reason,
            )
            for t in data.delisted
        ),
    )


def _price_events(data: ReportData) -> Section:
    """What happened to the prices of the report's tickers over the sessions it scores (README:
    "Prices over time"): restatements, corrections, confirmed jumps, gaps, late closes, ..."""
    events = data.events.sort("session_date", "ticker", "kind", descending=[True, False, False])
    if events.is_empty():
        return Section("price-events", "Price events", "No price event over the sessions this report scores.")
    more = events.height - EVENTS_SHOWN
    notes = (f"and {more} more: SELECT * FROM price_events ORDER BY session_date DESC",) if more > 0 else ()
    return Section(
        "price-events",
        "Price events",
        f"{events.height} event(s) in the prices of these tickers over the sessions this report scores, newest "
        "first: a restatement rebased the stored history (factor: the ratio), a correction replaced one close, a "
        "jump is a move beyond the threshold that a second look confirmed (factor: the move), a gap a session "
        "without a close after the wait, late a close filled in after it was missing.",
        ("Ticker", "Session", "Kind", "Factor", "Detail"),
        "lllrl",
        tuple(
            (row["ticker"], row["session_date"].isoformat(), row["kind"], fmt(row["factor"], ".6g"), row["detail"])
            for row in events.head(EVENTS_SHOWN).iter_rows(named=True)
        ),
        notes,
    )


_ORDER = f"Worst skill over the last {RANK_WINDOW} first; tickers with none yet last."


def _interval(row: dict[str, Any], level: int) -> str:
    lower, upper = row[f"lower_{level}"], row[f"upper_{level}"]
    return NA if lower is None or upper is None else f"{lower:,.2f} – {upper:,.2f}"


def _forecasts(data: ReportData) -> Section:
    levels = LEVELS if data.has_intervals else ()
    return Section(
        "forecasts",
        "Forecasts",
        f"{_ORDER} Each ticker's latest forecast, made after the close of its market's session (From) for its "
        "market's next session (For). Change is from the last close; training loss is the last epoch's mean "
        f"batch loss of the fit trained through that session; skill as in the accuracy tables, over the last "
        f"{RANK_WINDOW}.",
        (
            "Ticker",
            "Market",
            "From",
            "For",
            "Last close",
            "Forecast",
            "Change",
            "Change %",
            *(f"{level} % interval" for level in levels),
            "Training loss",
            f"Skill ({RANK_WINDOW})",
        ),
        "llll" + "r" * (6 + len(levels)),
        tuple(
            (
                row["ticker"],
                row["calendar"] or NA,
                row["as_of"].isoformat(),
                row["target_session"].isoformat(),
                fmt(row["last_close"], ",.2f"),
                fmt(row["predicted_close"], ",.2f"),
                fmt(row["predicted_change"], "+,.2f"),
                fmt(row["predicted_change_pct"], "+.2f", "%"),
                *(_interval(row, level) for level in levels),
                fmt(row["training_loss"], "#.4g"),
                fmt(row[f"skill_ratio_{RANK_WINDOW}"], ".3f"),
            )
            for row in data.tickers.iter_rows(named=True)
        ),
    )


def _accuracy(data: ReportData, w: int) -> Section:
    intro = (
        f"Forecasts whose target session is on or before {data.as_of.isoformat()} and whose close is known; n counts "
        "them (n/a: none yet). MAE and RMSE in price units; MAPE in % of the close; Direction: % of forecasts that "
        "called the move from the last close. "
        f"Skill: MAE / MAE of the naive forecast (the last close); {WORSE} above 1. " + _ORDER
        if w == WINDOWS[0]
        else f"As above, over up to {w} forecasts."
    )
    return Section(
        f"accuracy-{w}",
        f"Accuracy over the last {w} realised forecasts",
        intro,
        ("Ticker", "n", "MAE", "RMSE", "MAPE", "Direction", "Skill", "Flag"),
        "lrrrrrrl",
        tuple(
            (
                row["ticker"],
                str(row[f"n_{w}"]),
                fmt(row[f"mae_{w}"], ",.3f"),
                fmt(row[f"rmse_{w}"], ",.3f"),
                fmt(row[f"mape_pct_{w}"], ".2f", "%"),
                fmt(row[f"directional_accuracy_pct_{w}"], ".1f", "%"),
                fmt(row[f"skill_ratio_{w}"], ".3f"),
                WORSE if row[f"worse_than_naive_{w}"] else "",
            )
            for row in data.tickers.iter_rows(named=True)
        ),
    )


def _intervals(data: ReportData, w: int) -> Section:
    intro = (
        "Over the realised forecasts that have an interval (n): Coverage is the % of closes inside the interval, "
        f"to compare with its level; {COVERAGE_OFF} when either is more than {COVERAGE_TOLERANCE:g} points away. Width "
        "and Winkler score (width plus 2/α times any miss; lower is better) in % of the last close. " + _ORDER
        if w == WINDOWS[0]
        else f"As above, over up to {w} forecasts."
    )
    return Section(
        f"intervals-{w}",
        f"Prediction intervals over the last {w} realised forecasts",
        intro,
        ("Ticker", "n", *(f"{m} {level}" for m in ("Coverage", "Width", "Winkler") for level in LEVELS), "Flag"),
        "lr" + "r" * 3 * len(LEVELS) + "l",
        tuple(
            (
                row["ticker"],
                str(row[f"n_interval_{w}"]),
                *(fmt(row[f"coverage_{level}_pct_{w}"], ".1f", "%") for level in LEVELS),
                *(fmt(row[f"{m}_{level}_pct_{w}"], ".2f", "%") for m in ("width", "winkler") for level in LEVELS),
                COVERAGE_OFF if row[f"coverage_off_{w}"] else "",
            )
            for row in data.tickers.iter_rows(named=True)
        ),
    )


# --- charts -------------------------------------------------------------------------------------


def skill_intro(charts: Charts) -> str:
    if charts.skill is None:
        return f"Skill over time needs {SKILL_WINDOW} realised forecasts: none yet."
    return (
        f"At each target session, skill over the {SKILL_WINDOW} sessions up to it. Thick line: all tickers pooled "
        f"(MAPE / naive MAPE); thin lines: the {len(charts.skill_tickers)} worst by skill "
        f"over the last {RANK_WINDOW} (MAE / naive MAE). Below 1 the model beats the naive forecast."
    )


def charts_intro(data: ReportData, charts: Charts) -> str:
    shown = len(charts.files)
    return (
        f"{shown} of {data.tickers.height + len(data.failures)} tickers charted. Each chart: the actual closes and the "
        f"forecasts made for them over the last {max(WINDOWS)} realised sessions, "
        "the next session's forecast (red dot) "
        "and, when stored, the 80 % interval (band); below, the last epoch's training loss of each session's fit."
    )


def chart_caption(data: ReportData, ticker: str) -> str:
    """One line under a ticker's chart: its skill, errors and coverage, or why it failed."""
    if (failure := data.failures.get(ticker)) is not None:
        return f"{ticker}: failed at {failure.stage}: {failure.reason}"
    row = data.tickers.row(by_predicate=pl.col("ticker") == ticker, named=True)
    w = RANK_WINDOW
    skill = ", ".join(f"{fmt(row[f'skill_ratio_{n}'], '.3f')} over the last {n}" for n in reversed(WINDOWS))
    errors = [
        f"MAPE {fmt(row[f'mape_pct_{w}'], '.2f', '%')}",
        f"direction {fmt(row[f'directional_accuracy_pct_{w}'], '.1f', '%')}",
    ]
    if data.has_intervals:
        errors.append(f"80 % interval coverage {fmt(row[f'coverage_80_pct_{w}'], '.1f', '%')}")
    flag = f"{WORSE} over the last {w}; " if row[f"worse_than_naive_{w}"] else ""
    return f"{ticker}: {flag}skill {skill}; over the last {w}, " + ", ".join(errors)
