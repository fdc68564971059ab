"""The report as text: markdown and HTML (referencing its charts by relative path), and CSV.

Markdown and HTML say the same things in the same order (content.py): summary, runs,
skill over time, the ticker charts, then the per-ticker tables. The HTML is static:
no script, so it shows the same in any browser, mail client or file viewer.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import polars as pl

from forecaster.report import content
from forecaster.report.charts import Charts
from forecaster.report.content import FLAGS, Section
from forecaster.report.data import ReportData
from forecaster.report.plots import DPI, FIGSIZE_INCHES

_WIDTH, _HEIGHT = (round(inches * DPI) for inches in FIGSIZE_INCHES)


def _chart_parts(data: ReportData, charts: Charts, folder: str) -> Iterator[tuple[str, str, str, str]]:
    """(group title or "", src, alt text, caption) of every ticker chart, grouped, in order."""
    for group in data.chart_groups:
        for index, ticker in enumerate(group.tickers):
            alt = f"{ticker}: actual vs predicted close, next forecast, training loss"
            src = f"{folder}/{charts.files[ticker]}"
            yield (group.title if index == 0 else ""), src, alt, content.chart_caption(data, ticker)


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


def render_markdown(data: ReportData, charts: Charts, folder: str) -> str:
    """The report in markdown; `folder` is the charts' directory relative to the report."""
    lines = [f"# {content.title(data)}", "", content.lead(data), ""]
    for section in content.overview(data):
        lines += _md_section(section)
    lines += ["## Skill over time", "", content.skill_intro(charts), ""]
    if charts.skill:
        lines += [f"![Skill over time]({folder}/{charts.skill})", ""]
    if data.chart_groups:
        lines += ["## Charts", "", content.charts_intro(data, charts), ""]
        for group, src, alt, caption in _chart_parts(data, charts, folder):
            lines += ([f"### {group}", ""] if group else []) + [f"![{_md_cell(alt)}]({src})", "", caption, ""]
    for section in content.tables(data):
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
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 12px; border-bottom: 1px solid #e4e4e4; text-align: left; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
.r { text-align: right; }
tbody tr:nth-child(even) { background: #fafafa; }
td.flag { color: #b00020; font-weight: 600; }
table.summary { font-size: 15px; }
figure { margin: 8px 0 22px; }
img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 14px; color: #333; margin-top: 2px; }
ul { margin: 4px 0 10px; padding-left: 22px; font-size: 14px; }
"""


def _class(*names: str) -> str:
    """A class attribute with the non-empty names, or nothing."""
    names = tuple(name for name in names if name)
    return f' class="{" ".join(names)}"' if names else ""


def _html_row(cells: tuple[str, ...], align: str, tag: str) -> str:
    def cell(text: str, a: str) -> str:
        classes = _class("r" if a == "r" else "", "flag" if tag == "td" and text in FLAGS else "")
        return f"<{tag}{classes}>{html.escape(text)}</{tag}>"

    return "<tr>" + "".join(cell(text, a) for text, a in zip(cells, align, strict=True)) + "</tr>"


def _html_section(section: Section, *, table_class: str = "") -> str:
    e = html.escape
    parts = [f'<section id="{section.anchor}"><h2>{e(section.title)}</h2><p>{e(section.intro)}</p>']
    if section.headers:
        parts.append(f"<table{_class(table_class)}><thead>")
        parts.append(_html_row(section.headers, section.align, "th") + "</thead><tbody>")
        parts += [_html_row(row, section.align, "td") for row in section.rows]
        parts.append("</tbody></table>")
    if section.notes:
        parts.append("<ul>" + "".join(f"<li>{e(note)}</li>" for note in section.notes) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def _img(src: str, alt: str) -> str:
    e = html.escape
    return f'<img src="{e(src)}" width="{_WIDTH}" height="{_HEIGHT}" alt="{e(alt)}">'


def render_html(data: ReportData, charts: Charts, folder: str) -> str:
    """The report as one static HTML page; `folder` is the charts' directory relative to the report."""
    e = html.escape
    overview, tables = content.overview(data), content.tables(data)
    links = [(s.anchor, s.title) for s in overview] + [("skill", "Skill over time")]
    links += [("charts", "Charts")] if data.chart_groups else []
    links += [(s.anchor, re.sub(r" over the last (\d+) realised forecasts", r" (\1)", s.title)) for s in tables]
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
        parts.append(_img(f"{folder}/{charts.skill}", "Skill over time: pooled and the worst tickers"))
    parts.append("</section>")
    if data.chart_groups:
        parts.append(f'<section id="charts"><h2>Charts</h2><p>{e(content.charts_intro(data, charts))}</p>')
        for group, src, alt, caption in _chart_parts(data, charts, folder):
            if group:
                parts.append(f"<h3>{e(group)}</h3>")
            parts.append(f"<figure>{_img(src, alt)}<figcaption>{e(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts += [_html_section(s) for s in tables]
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --- CSV ----------------------------------------------------------------------------------


def render_csv(data: ReportData) -> str:
    """One row per ticker in the report's order, every column of data.tickers; a missing value is an empty cell."""
    return data.tickers.select("as_of", "ticker", "calendar", pl.exclude("as_of", "ticker", "calendar")).write_csv()
