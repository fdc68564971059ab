"""The report as text: markdown, HTML (with its images) and CSV, from a ReportData."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from forecaster.report.data import WINDOWS, ReportData
from forecaster.store.runs import RunRecord

NA = "n/a"
WORSE = "WORSE THAN NAIVE"


@dataclass(frozen=True)
class _Section:
    title: str
    intro: str
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()  # bullet points after the table


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return NA if value is None else f"{value:{spec}}{suffix}"


def _duration(run: RunRecord) -> str:
    if run.finished_at is None:  # still running, or the process died before recording its end
        return "running" if run.status == "running" else NA
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _title(data: ReportData) -> str:
    return f"Forecast report {data.as_of.isoformat()} (preset {data.preset})"


def _summary(data: ReportData) -> str:
    targets = sorted({d.isoformat() for d in data.tickers["target_session"]})
    target = f"for {', '.join(targets)}" if targets else "none stored"
    return f"Forecasts made after the close of {data.as_of.isoformat()}, {target}: {data.tickers.height} tickers."


def _sections(data: ReportData) -> list[_Section]:
    records = [run.record for run in data.runs]
    run_rows = tuple(
        (
            str(r.id), r.kind, r.status, r.started_at.strftime("%Y-%m-%d %H:%M:%S"), _duration(r),
            str(r.tickers_ok), str(r.tickers_failed), str(r.tickers_skipped),
        )
        for r in records
    )
    run_notes = tuple(
        [f"run {r.id} error: {r.error}" for r in records if r.error]
        + [f"run {f.run_id}: {f.ticker} failed at {f.stage}: {f.reason}" for run in data.runs for f in run.failures]
    )
    sections = [
        _Section(
            "Runs",
            "Runs recorded for this session." if data.runs else "No run recorded for this session.",
            ("Run", "Kind", "Status", "Started (UTC)", "Duration", "OK", "Failed", "Skipped") if data.runs else (),
            run_rows,
            run_notes,
        ),
        _Section(
            "Forecasts",
            "Change is from the last close; training loss is the last epoch's mean batch loss of the fit "
            "trained through this session.",
            ("Ticker", "Last close", "Forecast", "Change", "Change %", "Training loss"),
            tuple(
                (
                    row["ticker"], _fmt(row["last_close"], ",.2f"), _fmt(row["predicted_close"], ",.2f"),
                    _fmt(row["predicted_change"], "+,.2f"), _fmt(row["predicted_change_pct"], "+.2f", "%"),
                    _fmt(row["training_loss"], ".4g"),
                )
                for row in data.tickers.iter_rows(named=True)
            ),
        ),
    ]
    for w in WINDOWS:
        sections.append(
            _Section(
                f"Accuracy over the last {w} realised forecasts",
                (
                    f"Forecasts whose target session is on or before {data.as_of.isoformat()} and whose close is "
                    "known; n counts them (n/a: none yet). Direction: share of forecasts that called the move "
                    f"from the last close. Skill: MAE / MAE of the naive forecast (the last close); {WORSE} above 1."
                )
                if w == WINDOWS[0]
                else f"As above, over up to {w} forecasts.",
                ("Ticker", "n", "MAE", "RMSE", "MAPE", "Direction", "Skill"),
                tuple(_accuracy_row(row, w) for row in data.tickers.iter_rows(named=True)),
            )
        )
    return sections


def _accuracy_row(row: dict[str, Any], w: int) -> tuple[str, ...]:
    return (
        row["ticker"], str(row[f"n_{w}"]), _fmt(row[f"mae_{w}"], ",.3f"), _fmt(row[f"rmse_{w}"], ",.3f"),
        _fmt(row[f"mape_{w}"], ".2f", "%"), _fmt(row[f"directional_accuracy_{w}"], ".1%"),
        _fmt(row[f"skill_ratio_{w}"], ".3f") + (f" {WORSE}" if row[f"worse_than_naive_{w}"] else ""),
    )


_CHART_INTRO = (
    f"Actual and predicted closes over the last {max(WINDOWS)} realised forecasts and the next session; "
    "training loss per epoch of the latest fit."
)


# --- markdown -----------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(data: ReportData, images: dict[str, str]) -> str:
    lines = [f"# {_title(data)}", "", _summary(data), ""]
    for section in _sections(data):
        lines += [f"## {section.title}", "", section.intro, ""]
        if section.headers:
            lines.append("| " + " | ".join(section.headers) + " |")
            lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(section.headers))) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
            lines.append("")
        if section.notes:
            lines += [f"- {_md_cell(note)}" for note in section.notes] + [""]
    if images:
        lines += ["## Charts", "", _CHART_INTRO, ""]
        for ticker, src in images.items():
            lines += [f"### {ticker}", "", f"![{_md_cell(ticker)}: actual vs predicted close, training loss]({src})", ""]
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.flag { color: #b00020; font-weight: bold; }
figure { margin: 0 0 1.5em; }
"""

#: Sets <body data-images-loaded="LOADED/TOTAL"> once the page has loaded, for headless checks.
_SCRIPT = """
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((image) => image.complete && image.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = `${loaded}/${images.length}`;
});
"""

_FLAGGED = ("failed", "partial", "interrupted")
_FLAG_CLASS = ' class="flag"'


def _html_row(cells: Sequence[str], tag: str) -> str:
    def cell(text: str) -> str:
        flagged = tag == "td" and (WORSE in text or text in _FLAGGED)
        return f"<{tag}{_FLAG_CLASS if flagged else ''}>{html.escape(text)}</{tag}>"

    return "<tr>" + "".join(cell(text) for text in cells) + "</tr>"


def render_html(data: ReportData, images: dict[str, str]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(_title(data))}</title><style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>",
        f"<h1>{e(_title(data))}</h1><p>{e(_summary(data))}</p>",
    ]
    for section in _sections(data):
        parts.append(f"<h2>{e(section.title)}</h2><p>{e(section.intro)}</p>")
        if section.headers:
            parts.append("<table><thead>" + _html_row(section.headers, "th") + "</thead><tbody>")
            parts += [_html_row(row, "td") for row in section.rows]
            parts.append("</tbody></table>")
        if section.notes:
            parts.append("<ul>" + "".join(f"<li>{e(note)}</li>" for note in section.notes) + "</ul>")
    if images:
        parts.append(f"<h2>Charts</h2><p>{e(_CHART_INTRO)}</p>")
        for ticker, src in images.items():
            parts.append(
                f'<figure><figcaption>{e(ticker)}</figcaption><img src="{e(src)}" '
                f'alt="{e(ticker)}: actual vs predicted close, training loss"></figure>'
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --- CSV ----------------------------------------------------------------------------------


def render_csv(data: ReportData) -> str:
    """One row per ticker, every metric column; a metric with no realised forecast is an empty cell."""
    return data.tickers.select(pl.lit(data.as_of).alias("as_of"), pl.all()).write_csv()
