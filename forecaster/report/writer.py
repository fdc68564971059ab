"""The daily report of one forecast session: what was forecast, how past forecasts fared, how the runs went.

`write_reports` reads the tables once (`load_report`), draws the charts once
(`draw_charts`), then writes one dated file per format: markdown, HTML or CSV. The
HTML has its charts inline; the markdown references PNGs in `report-YYYY-MM-DD/` and
the CSV, which are written with it. Every file is written to a temporary name and
renamed into place, what the markdown references first, so a reader never sees half
a report or a report whose images are missing; another day's files are never touched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal, get_args

import sqlalchemy as sa

from forecaster.errors import UserError
from forecaster.report.charts import draw_charts
from forecaster.report.content import briefing_alerts, title
from forecaster.report.data import DEFAULT_PER_END, DELISTED_AFTER, load_report
from forecaster.report.render import render_briefing, render_csv, render_html, render_markdown

Format = Literal["md", "html", "csv"]
FORMATS: tuple[str, ...] = get_args(Format)


@dataclass(frozen=True)
class WrittenReport:
    """What write_briefed_reports wrote, and what a notification of it says."""

    paths: list[Path]
    title: str
    #: The report's briefing in markdown, without images: what a notification carries as its body.
    briefing: str
    #: One line per problem the report found that deserves an alert of its own (coverage drifting, ...).
    alerts: list[str]


def write_reports(
    engine: sa.Engine,
    *,
    as_of: date | None,
    preset: str,
    formats: Sequence[str],
    out_dir: Path,
    charts: int = DEFAULT_PER_END,
    delisted_after: int = DELISTED_AFTER,
    named: Sequence[str] = (),
) -> list[Path]:
    """Writes `report-YYYY-MM-DD.{fmt}` for each of `formats` into `out_dir`; returns their paths in that order
    (write_briefed_reports, without the briefing)."""
    return write_briefed_reports(
        engine,
        as_of=as_of,
        preset=preset,
        formats=formats,
        out_dir=out_dir,
        charts=charts,
        delisted_after=delisted_after,
        named=named,
    ).paths


def write_briefed_reports(
    engine: sa.Engine,
    *,
    as_of: date | None,
    preset: str,
    formats: Sequence[str],
    out_dir: Path,
    charts: int = DEFAULT_PER_END,
    delisted_after: int = DELISTED_AFTER,
    named: Sequence[str] = (),
) -> WrittenReport:
    """Writes `report-YYYY-MM-DD.{fmt}` for each of `formats` into `out_dir`, and the CSV with the markdown,
    which points to it for the tickers it leaves out: their paths, the formats' in order, then the CSV if
    added; the briefing and the alerts.

    The charts are drawn once (chart_groups: `charts` tickers per group, and the `named` ones), inline in
    the HTML and PNGs in `report-YYYY-MM-DD/` for the markdown; after a markdown report is in place, the
    images it no longer references are removed from that directory.
    """
    formats = list(dict.fromkeys(formats))
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown or not formats:
        raise UserError(
            f"report format {', '.join(map(repr, unknown)) or 'missing'}: expected one of {', '.join(FORMATS)}"
        )
    if charts < 0:
        raise UserError(f"charts per group {charts}: expected 0 or more")
    data = load_report(engine, as_of=as_of, preset=preset, charts=charts, delisted_after=delisted_after, named=named)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{data.as_of.isoformat()}"
    drawn = draw_charts(data) if {"md", "html"} & set(formats) else None
    written = [*formats, *(["csv"] if "md" in formats and "csv" not in formats else [])]
    images = drawn if "md" in formats else None  # the HTML has them inline
    if images is not None:
        (out_dir / stem).mkdir(exist_ok=True)
        for name, png in images.pngs.items():
            _write_atomic(out_dir / stem / name, png)
    for fmt in sorted(written, key=lambda fmt: fmt != "csv"):  # the CSV before the markdown that points to it
        if fmt == "csv":
            text = render_csv(data)
        else:
            assert drawn is not None, "charts are drawn for every md or html report"
            text = render_markdown(data, drawn, stem, f"{stem}.csv") if fmt == "md" else render_html(data, drawn)
        _write_atomic(out_dir / f"{stem}.{fmt}", text.encode())
    if images is not None:
        _prune_images(out_dir / stem, keep=set(images.pngs))
    paths = [out_dir / f"{stem}.{fmt}" for fmt in written]
    return WrittenReport(paths, title(data), render_briefing(data), briefing_alerts(data))


def write_report(
    engine: sa.Engine, *, as_of: date | None, preset: str, fmt: Format, out_dir: Path, charts: int = DEFAULT_PER_END
) -> Path:
    """Writes the report in one format (see write_reports: markdown brings its CSV) and returns its path."""
    return write_reports(engine, as_of=as_of, preset=preset, formats=[fmt], out_dir=out_dir, charts=charts)[0]


def _prune_images(directory: Path, keep: set[str]) -> None:
    for png in directory.glob("*.png"):
        if png.name not in keep:
            png.unlink(missing_ok=True)
    if not any(directory.iterdir()):
        directory.rmdir()


def _write_atomic(path: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; a report is for others to read
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
