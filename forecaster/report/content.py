"""What the report says, format-neutral: titles, sentences and table cells, rendered alike in markdown and HTML."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from forecaster.report import briefing as briefing_text
from forecaster.report.charts import Charts
from forecaster.report.data import MAX_CHARTS, RANK_WINDOW, SKILL_WINDOW, WINDOWS, ReportData
from forecaster.report.metrics import LEVELS
from forecaster.report.significance import HEADLINE_LEVEL, TICKER_LEVEL
from forecaster.store.runs import RunRecord

NA = "n/a"
WORSE = "WORSE THAN NAIVE"
COVERAGE_OFF = "COVERAGE OFF"
#: Cells that mark a problem (HTML shows them in red).
FLAGS = (WORSE, COVERAGE_OFF, "failed", "partial", "interrupted", *briefing_text.VERDICT_FLAGS)
#: The summary names at most this many failed tickers, and the Runs section as many per run.
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
    return f"Forecasts made after the close of {data.as_of.isoformat()}, {target}: {data.tickers.height:,} tickers."


def briefing(data: ReportData) -> list[Section]:
    """What a reader needs first, and what a notification carries: the headline numbers and what changed."""
    return [_headline(data), _changes(data)]


def briefing_alerts(data: ReportData) -> list[str]:
    """One line per problem of the session that deserves an alert of its own; none when all is well."""
    return briefing_text.alerts(data)


def overview(data: ReportData) -> list[Section]:
    """The sections above the charts: the briefing, the summary, runs, the tickers probably delisted (when
    any) and price events."""
    delisted = [_delisted(data)] if data.delisted else []
    return [*briefing(data), _summary(data), _runs(data), *delisted, _price_events(data)]


def _headline(data: ReportData) -> Section:
    previous = (
        f"Change is since the previous forecast session, {data.previous.as_of.isoformat()}."
        if data.previous
        else "No previous forecast session to compare with."
    )
    return Section(
        "briefing",
        "Briefing",
        f"Each ticker's last {briefing_text.BRIEFING_WINDOW} realised forecasts, pooled in % of price. {previous} "
        f"A verdict in capitals is a problem beyond chance (p at most {HEADLINE_LEVEL:.0%}; p: the test's p-value). "
        f"A ticker is flagged when its own test over its last {RANK_WINDOW} rejects at {TICKER_LEVEL:.0%} (coverage: "
        "binomial; skill: a sign test against the naive forecast), so among many tickers chance alone flags a few: "
        "about the number beside the count.",
        ("Measure", "Now", "Target", "Change", "p", "Verdict"),
        "lrrrrl",
        tuple(
            (h.measure, h.now, h.target, h.change, briefing_text.p_text(h.p_value), h.verdict)
            for h in briefing_text.headlines(data)
        ),
    )


def _changes(data: ReportData) -> Section:
    since = f"since {data.previous.as_of.isoformat()}" if data.previous else "in this first forecast session"
    found = briefing_text.changes(data)
    return Section(
        "changes",
        "What changed",
        f"What changed {since}." if found else f"Nothing to say {since}.",
        ("What", "Count", "Which") if found else (),
        "lrl",
        tuple((c.what, str(c.count), c.details) for c in found),
    )


def tables(data: ReportData, *, csv: str | None = None) -> list[Section]:
    """The per-ticker table, every ticker in the order of data.tickers; given `csv` (the CSV report's file
    name, for markdown), only the TABLE_ENDS worst and best by skill of a longer one, and where the rest are."""
    return [_tickers(data, csv)]


def _summary(data: ReportData) -> Section:
    failures = list(data.failures)
    failed = f"{len(failures)} failed: {', '.join(failures[:FAILED_NAMED])}" if failures else "none failed"
    if len(failures) > FAILED_NAMED:
        failed += f" and {len(failures) - FAILED_NAMED} more (see Runs)"
    t = data.tickers

    def count(column: str, of: str) -> tuple[str, ...]:
        return tuple(f"{int(t[f'{column}_{w}'].sum()):,} of {t[f'{of}_{w}'].is_not_null().sum():,}" for w in WINDOWS)

    def pooled(name: str, spec: str, suffix: str = "") -> tuple[str, ...]:
        return tuple(fmt(data.pooled[w][name], spec, suffix) for w in WINDOWS)

    rows = [
        ("Tickers with realised forecasts", *(f"{int((t[f'n_{w}'] > 0).sum()):,} of {t.height:,}" for w in WINDOWS)),
        ("Tickers flagged worse than naive (sign test)", *count("worse_than_naive", "skill_ratio")),
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
        off = "Tickers with coverage off (binomial test)"
        rows.append((off, *count("coverage_off", "coverage_80_pct")))
    forecast = f"{data.tickers.height:,} ticker{'' if data.tickers.height == 1 else 's'} forecast"
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
    for run in data.runs:
        notes += [f"run {f.run_id}: {f.ticker} failed at {f.stage}: {f.reason}" for f in run.failures[:FAILED_NAMED]]
        if len(run.failures) > FAILED_NAMED:
            notes.append(
                f"run {run.record.id}: and {len(run.failures) - FAILED_NAMED} more: "
                f"SELECT * FROM run_failures WHERE run_id = {run.record.id}"
            )
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
#: The markdown report's ticker table keeps this many of the worst and of the best tickers; the CSV has all.
TABLE_ENDS = 10
#: Every cell of the row that stands for the tickers the markdown table leaves out.
GAP = "…"
#: Between the flags of a ticker in its Flags cell.
FLAG_SEPARATOR = "; "

_Cell = Callable[[dict[str, Any]], str]


def _cell(column: str, spec: str, suffix: str = "") -> _Cell:
    """The cell of a number column of data.tickers."""
    return lambda row: fmt(row[column], spec, suffix)


def _interval(level: int) -> _Cell:
    def cell(row: dict[str, Any]) -> str:
        lower, upper = row[f"lower_{level}"], row[f"upper_{level}"]
        return NA if lower is None or upper is None else f"{lower:,.2f}–{upper:,.2f}"

    return cell


def flags(row: dict[str, Any]) -> str:
    """A row's flags with the windows they hold over ("WORSE THAN NAIVE (20, 60); COVERAGE OFF (60)"), or ""."""
    found = []
    for text, column in ((WORSE, "worse_than_naive"), (COVERAGE_OFF, "coverage_off")):
        windows = [str(w) for w in WINDOWS if row[f"{column}_{w}"]]
        found += [f"{text} ({', '.join(windows)})"] if windows else []
    return FLAG_SEPARATOR.join(found)


def _ticker_columns(data: ReportData) -> list[tuple[str, str, _Cell]]:
    """(header, alignment, cell) of each column of the ticker table: Market, From and For only when they
    differ between tickers, the intervals' columns only when some forecast has one."""
    t, w = data.tickers, RANK_WINDOW
    columns: list[tuple[str, str, _Cell]] = [("Ticker", "l", lambda row: row["ticker"])]
    if t["calendar"].n_unique() > 1:
        columns.append(("Market", "l", lambda row: row["calendar"]))
    if _dated(data):
        columns.append(("From", "l", lambda row: row["as_of"].isoformat()))
        columns.append(("For", "l", lambda row: row["target_session"].isoformat()))
    columns += [
        ("Last close", "r", _cell("last_close", ",.2f")),
        ("Forecast", "r", _cell("predicted_close", ",.2f")),
        ("Change", "r", _cell("predicted_change_pct", "+.2f", "%")),
    ]
    if data.has_intervals:
        columns += [(f"{level} % interval", "r", _interval(level)) for level in LEVELS]
    columns += [
        ("Loss", "r", _cell("training_loss", "#.4g")),
        ("n", "r", _cell(f"n_{w}", "d")),
        *((f"Skill {n}", "r", _cell(f"skill_ratio_{n}", ".3f")) for n in WINDOWS),
        ("MAPE", "r", _cell(f"mape_pct_{w}", ".2f", "%")),
        ("Hits", "r", _cell(f"directional_accuracy_pct_{w}", ".1f", "%")),
    ]
    if data.has_intervals:
        columns += [(f"Coverage {level}", "r", _cell(f"coverage_{level}_pct_{w}", ".1f", "%")) for level in LEVELS]
        columns += [
            ("Width 80", "r", _cell(f"width_80_pct_{w}", ".2f", "%")),
            ("Winkler 80", "r", _cell(f"winkler_80_pct_{w}", ".2f", "%")),
        ]
    return [*columns, ("Flags", "l", flags)]


def _dated(data: ReportData) -> bool:
    """Whether the tickers' forecasts were made after different sessions, or are for different ones."""
    return data.tickers["as_of"].n_unique() > 1 or data.tickers["target_session"].n_unique() > 1


def _tickers(data: ReportData, csv: str | None) -> Section:
    w, t = RANK_WINDOW, data.tickers
    columns = _ticker_columns(data)

    def rows(frame: pl.DataFrame) -> list[tuple[str, ...]]:
        return [tuple(cell(row) for _, _, cell in columns) for row in frame.iter_rows(named=True)]

    excerpt = []
    if csv is None or t.height <= 2 * TABLE_ENDS + 1:
        shown = rows(t)
    else:  # the worst rows, a gap, the best: by skill, the best come right before the tickers without any
        ranked = int(t[f"skill_ratio_{w}"].is_not_null().sum())
        best = t[max(TABLE_ENDS, ranked - TABLE_ENDS) : ranked]
        shown = [*rows(t.head(TABLE_ENDS)), (GAP,) * len(columns), *rows(best)]
        excerpt.append(
            f"The {TABLE_ENDS} worst and the {best.height} best by skill over the last {w} of {t.height:,} "
            f"tickers: all of them, with every measure over both windows, are in [{csv}]({csv})."
        )
    dated = (
        ", made after the close of its market's session (From) for its market's next session (For): on a day "
        "a market was closed, its tickers show their latest forecast"
        if _dated(data)
        else ""
    )
    sentences = [
        *excerpt,
        _ORDER,
        f"Each ticker's latest forecast{dated}: Change from the last close"
        + ("; the next close's 80 % and 95 % intervals" if data.has_intervals else "")
        + "; Loss is the last epoch's mean batch loss of the fit trained through the session forecast from.",
        "Skill is MAE / MAE of the naive forecast (the last close) over the last "
        f"{' and '.join(map(str, WINDOWS))} realised forecasts: below 1 the model beats it.",
        f"Over the last {w} (n: how many are realised): MAPE in % of the close, Hits the % of forecasts that "
        "called the direction of the move"
        + (
            "; Coverage is the % of closes inside the 80 % and 95 % intervals, Width and Winkler score (width "
            "plus 2/α times any miss; lower is better) those of the 80 % interval, in % of the last close."
            if data.has_intervals
            else "."
        ),
        f"Flags, with the windows they hold over: {WORSE} where the errors are larger than the naive "
        f"forecast's beyond chance, {COVERAGE_OFF} where the closes inside the intervals are too few or too "
        "many for their levels beyond chance.",
        "The CSV report has every measure over both windows, MAE and RMSE too.",
    ]
    return Section(
        "tickers",
        "Tickers",
        " ".join(sentences),
        tuple(header for header, _, _ in columns),
        "".join(align for _, align, _ in columns),
        tuple(shown),
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
    shown, reported = len(charts.files), data.tickers.height + len(data.failures)
    some = shown < data.tickers.height
    why = (
        f"at most {MAX_CHARTS} besides those named in FORECASTER_REPORT_CHARTS or with --chart, so the report stays "
        "small whatever the watch list, in groups: the tickers named; those that failed in this session (with a "
        "history to show), to see what they did before; those flagged, the problems to look into; the biggest "
        "predicted moves, the forecasts that matter most today; the worst and the best by skill, the two ends of "
        "the ticker table. A ticker of several groups is charted in the first and named in the others"
        if some
        else "every ticker forecast, then those that failed in this session with a history to show"
    )
    return (
        f"{shown:,} of {reported:,} tickers charted: {why}. Each chart: the actual closes and the forecasts made "
        f"for them over the last {max(WINDOWS)} realised sessions, the next session's forecast (red dot) and, when "
        "stored, the 80 % and 95 % intervals (darker and lighter band); a failed ticker's title says where and why "
        "it failed. Below, the last epoch's training loss of each session's fit, on an axis from 0."
    )


def chart_caption(data: ReportData, ticker: str) -> str:
    """One line under a ticker's chart: its skill, errors, coverage and flags, or why it failed."""
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
    flagged = f"{found}; " if (found := flags(row)) else ""
    change = fmt(row["predicted_change_pct"], "+.2f", "%")
    return f"{ticker}: {flagged}forecast change {change}; skill {skill}; over the last {w}, " + ", ".join(errors)
