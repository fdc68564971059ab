"""The report as text: markdown (referencing its charts by relative path), HTML (one self-contained file,
its charts inline) and CSV.

Markdown and HTML say the same things in the same order (content.py): the overview, skill
over time, the ticker charts, then the ticker table: all of it in HTML, where a small
script makes it sortable and filterable (without script it reads as it is, worst first);
in markdown its worst and best rows, and the name of the CSV that has every row. The HTML
references nothing outside itself, so it can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterator

import polars as pl

from forecaster.report import content
from forecaster.report.charts import Charts
from forecaster.report.content import FLAG_SEPARATOR, FLAGS, Section
from forecaster.report.data import ReportData
from forecaster.report.plots import DPI, FIGSIZE_INCHES

_WIDTH, _HEIGHT = (round(inches * DPI) for inches in FIGSIZE_INCHES)


def _chart_parts(data: ReportData, charts: Charts) -> Iterator[tuple[str, list[str], list[str]]]:
    """(title, tickers charted here, tickers of the group charted above) of each chart group, in order: every
    ticker is charted once, in the first group it is in."""
    charted: set[str] = set()
    for group in data.chart_groups:
        here = [ticker for ticker in group.tickers if ticker not in charted]
        yield group.title, here, [ticker for ticker in group.tickers if ticker in charted]
        charted.update(here)


def _alt(ticker: str) -> str:
    return f"{ticker}: actual vs predicted close, next forecast, training loss"


# --- markdown -----------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_section(section: Section) -> list[str]:
    lines = [f"## {section.title}", "", section.intro, ""]
    if section.headers:
        lines.append("| " + " | ".join(section.headers) + " |")
        lines.append("|" + "|".join("---:" if a == "r" else "---" for a in section.align) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
        lines.append("")
    if section.notes:
        lines += [f"- {_md_cell(note)}" for note in section.notes] + [""]
    return lines


def render_briefing(data: ReportData) -> str:
    """The report's briefing in markdown, without images: its title, lead and the sections above the charts."""
    lines = [f"# {content.title(data)}", "", content.lead(data), ""]
    for section in content.briefing(data):
        lines += _md_section(section)
    return "\n".join(lines)


def render_markdown(data: ReportData, charts: Charts, folder: str, csv: str) -> str:
    """The report in markdown; `folder` is the charts' directory and `csv` the CSV report, both relative to it."""
    lines = [f"# {content.title(data)}", "", content.lead(data), ""]
    for section in content.overview(data):
        lines += _md_section(section)
    lines += ["## Skill over time", "", content.skill_intro(charts), ""]
    if charts.skill:
        lines += [f"![Skill over time]({folder}/{charts.skill})", ""]
    if data.chart_groups:
        lines += ["## Charts", "", content.charts_intro(data, charts), ""]
        for title, here, above in _chart_parts(data, charts):
            lines += [f"### {title}", ""]
            for ticker in here:
                image = f"![{_md_cell(_alt(ticker))}]({folder}/{charts.files[ticker]})"
                lines += [image, "", content.chart_caption(data, ticker), ""]
            if above:
                lines += [f"Charted above: {', '.join(above)}.", ""]
    for section in content.tables(data, csv=csv):
        lines += _md_section(section)
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 1240px; margin: 20px auto; padding: 0 20px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 6px; padding-bottom: 3px; border-bottom: 1px solid #ddd; }
h3 { font-size: 16px; margin: 20px 0 4px; }
p { margin: 4px 0 8px; max-width: 1100px; }
nav { margin: 6px 0 0; font-size: 14px; }
nav a { margin-right: 14px; color: #1a5fb4; text-decoration: none; }
a { color: #1a5fb4; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 12px; border-bottom: 1px solid #e4e4e4; text-align: left; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
.r { text-align: right; }
tbody tr:nth-child(even) { background: #fafafa; }
td.flag { color: #b00020; font-weight: 600; }
td.wrap { white-space: normal; min-width: 24em; }
table.summary { font-size: 15px; }
table.tickers { font-size: 13px; }
table.tickers th, table.tickers td { padding: 2px 3px 2px 5px; }
table.tickers th { box-shadow: 0 1px 0 #ccc; white-space: normal; vertical-align: bottom; }
table.tickers td:last-child { color: #b00020; font-weight: 600; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:hover { background: #e4e4e4; }
th[aria-sort="ascending"]::after { content: " ▲"; }
th[aria-sort="descending"]::after { content: " ▼"; }
input.filter { font: inherit; font-size: 14px; padding: 3px 6px; width: 320px; margin: 4px 10px 4px 0; }
span.count { font-size: 14px; color: #555; }
figure { margin: 8px 0 22px; }
img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 14px; color: #333; margin-top: 2px; }
ul { margin: 4px 0 10px; padding-left: 22px; font-size: 14px; }
"""

#: Makes the ticker table sortable (click or Enter on a header: numbers largest first, text A to Z, again to
#: reverse; n/a and empty cells last either way) and filterable (every word typed must be in a text cell:
#: ticker, market, flags). Without it the table reads as written, worst skill first.
_SCRIPT = """
for (const table of document.querySelectorAll("table.tickers")) {
  const body = table.tBodies[0], heads = [...table.tHead.rows[0].cells], rows = [...body.rows];
  const numeric = heads.map((th) => th.classList.contains("r"));
  const keys = [];
  const key = (i) => keys[i] ??= rows.map((row) => {
    const text = row.cells[i].textContent;
    return text === "" || text === "n/a" ? NaN : numeric[i] ? parseFloat(text.replace(/,/g, "")) : text;
  });
  let sorted = -1, descending = false;
  const sort = (i) => {
    descending = sorted === i ? !descending : numeric[i];
    sorted = i;
    const k = key(i), sign = descending ? -1 : 1;
    const order = rows.map((_, j) => j).sort((a, b) => {
      const x = k[a], y = k[b], xMissing = x !== x, yMissing = y !== y;
      if (xMissing || yMissing) return xMissing - yMissing || a - b;
      return (x < y ? -sign : x > y ? sign : 0) || a - b;
    });
    body.append(...order.map((j) => rows[j]));
    heads.forEach((th) => th.removeAttribute("aria-sort"));
    heads[i].setAttribute("aria-sort", descending ? "descending" : "ascending");
  };
  heads.forEach((th, i) => {
    th.tabIndex = 0;
    th.title = "Sort by " + th.textContent;
    th.addEventListener("click", () => sort(i));
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(i); }
    });
  });
  const texts = heads.flatMap((_, i) => numeric[i] ? [] : [i]);
  const haystacks = rows.map((row) => texts.map((i) => row.cells[i].textContent).join(" ").toLowerCase());
  const box = document.createElement("input"), count = document.createElement("span");
  box.type = "search";
  box.className = "filter";
  box.placeholder = "Filter: ticker, market or flag";
  count.className = "count";
  box.addEventListener("input", () => {
    const words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let shown = 0;
    rows.forEach((row, j) => {
      row.hidden = !words.every((word) => haystacks[j].includes(word));
      shown += !row.hidden;
    });
    const total = rows.length.toLocaleString("en");
    count.textContent = words.length ? `${shown.toLocaleString("en")} of ${total} shown` : "";
  });
  table.classList.add("sortable");
  table.before(box, count);
}
"""


def _class(*names: str) -> str:
    """A class attribute with the non-empty names, or nothing."""
    names = tuple(name for name in names if name)
    return f' class="{" ".join(names)}"' if names else ""


#: A cell of more characters than this may wrap (a list of tickers, a long reason): the table stays on the page.
_WRAP_AFTER = 60


def _html_row(cells: tuple[str, ...], align: str, tag: str) -> str:
    def cell(text: str, a: str) -> str:
        marks = ("flag" if text in FLAGS else "", "wrap" if len(text) > _WRAP_AFTER else "") if tag == "td" else ()
        classes = _class("r" if a == "r" else "", *marks)
        return f"<{tag}{classes}>{html.escape(text)}</{tag}>"

    return "<tr>" + "".join(cell(text, a) for text, a in zip(cells, align, strict=True)) + "</tr>"


def _html_heading(section: Section) -> list[str]:
    e = html.escape
    return [f'<section id="{section.anchor}"><h2>{e(section.title)}</h2><p>{e(section.intro)}</p>']


def _html_notes(section: Section) -> list[str]:
    return (
        ["<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in section.notes) + "</ul>"] if section.notes else []
    )


def _html_section(section: Section, *, table_class: str = "") -> str:
    parts = _html_heading(section)
    if section.headers:
        parts.append(f"<table{_class(table_class)}><thead>")
        parts.append(_html_row(section.headers, section.align, "th") + "</thead><tbody>")
        parts += [_html_row(row, section.align, "td") for row in section.rows]
        parts.append("</tbody></table>")
    parts += [*_html_notes(section), "</section>"]
    return "\n".join(parts)


def _html_ticker_table(section: Section) -> str:
    """A table of thousands of rows, kept small: alignment by column in the style, no closing tags of rows
    and cells (HTML does not need them), flags marked by their column (the last), one a line; the script
    makes it sortable."""
    numbers = ", ".join(
        f"#{section.anchor} td:nth-child({i})" for i, align in enumerate(section.align, start=1) if align == "r"
    )
    parts = [*_html_heading(section), *_html_notes(section)]
    parts.append(f"<style>{numbers} {{ text-align: right; }}</style>" if numbers else "")
    parts.append('<table class="tickers"><thead>' + _html_row(section.headers, section.align, "th"))
    parts.append("</thead><tbody>")
    parts += [
        "<tr><td>"
        + "<td>".join(html.escape(cell, quote=False) for cell in row[:-1])
        + "<td>"
        + "<br>".join(html.escape(flag, quote=False) for flag in row[-1].split(FLAG_SEPARATOR))
        for row in section.rows
    ]
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


def _img(png: bytes, alt: str) -> str:
    """The chart inline, as a data URI: the page needs no file beside it."""
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f'<img src="{src}" width="{_WIDTH}" height="{_HEIGHT}" alt="{html.escape(alt)}">'


def _chart_anchor(charts: Charts, ticker: str) -> str:
    """The id of a ticker's chart in the HTML report: its image's name without the .png (safe for any ticker)."""
    return charts.files[ticker].removesuffix(".png")


def render_html(data: ReportData, charts: Charts) -> str:
    """The report as one HTML page, its charts inline: nothing outside it is referenced."""
    e = html.escape
    overview, tables = content.overview(data), content.tables(data)
    links = [(s.anchor, s.title) for s in overview] + [("skill", "Skill over time")]
    links += [("charts", "Charts")] if data.chart_groups else []
    links += [(s.anchor, s.title) for s in tables]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(content.title(data))}</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{e(content.title(data))}</h1><p>{e(content.lead(data))}</p>",
        "<nav>" + "".join(f'<a href="#{anchor}">{e(text)}</a>' for anchor, text in links) + "</nav></header>",
    ]
    parts += [_html_section(s, table_class="summary" if s.anchor == "summary" else "") for s in overview]
    parts.append(f'<section id="skill"><h2>Skill over time</h2><p>{e(content.skill_intro(charts))}</p>')
    if charts.skill:
        parts.append(_img(charts.pngs[charts.skill], "Skill over time: pooled and the worst tickers"))
    parts.append("</section>")
    if data.chart_groups:
        parts.append(f'<section id="charts"><h2>Charts</h2><p>{e(content.charts_intro(data, charts))}</p>')
        for title, here, above in _chart_parts(data, charts):
            parts.append(f"<h3>{e(title)}</h3>")
            for ticker in here:
                image = _img(charts.pngs[charts.files[ticker]], _alt(ticker))
                caption = e(content.chart_caption(data, ticker))
                parts.append(
                    f'<figure id="{_chart_anchor(charts, ticker)}">{image}<figcaption>{caption}</figcaption></figure>'
                )
            if above:
                links_above = ", ".join(f'<a href="#{_chart_anchor(charts, t)}">{e(t)}</a>' for t in above)
                parts.append(f"<p>Charted above: {links_above}.</p>")
        parts.append("</section>")
    parts += [_html_ticker_table(s) for s in tables]
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


# --- CSV ----------------------------------------------------------------------------------


def render_csv(data: ReportData) -> str:
    """One row per ticker in the report's order, every column of data.tickers; a missing value is an empty cell."""
    return data.tickers.select("as_of", "ticker", "calendar", pl.exclude("as_of", "ticker", "calendar")).write_csv()
