"""The daily report of one forecast session: what was forecast, how past forecasts fared, how the runs went.

`write_reports` reads the tables once (`load_report`), draws the charts once
(`draw_charts`), then writes one dated file per format: markdown, HTML or CSV, with
the PNGs that markdown and HTML reference. Every file is written to a temporary
name and renamed into place, images first, so a reader never sees half a report or
a report whose images are missing; another day's files are never touched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Literal, get_args

import sqlalchemy as sa

from forecaster.errors import UserError
from forecaster.report.charts import draw_charts
from forecaster.report.data import DEFAULT_PER_END, DELISTED_AFTER, load_report
from forecaster.report.render import render_csv, render_html, render_markdown

Format = Literal["md", "html", "csv"]
FORMATS: tuple[str, ...] = get_args(Format)


def write_reports(
    engine: sa.Engine,
    *,
    as_of: date | None,
    preset: str,
    formats: Sequence[str],
    out_dir: Path,
    charts: int = DEFAULT_PER_END,
    delisted_after: int = DELISTED_AFTER,
) -> list[Path]:
    """Writes `report-YYYY-MM-DD.{fmt}` for each of `formats` into `out_dir`; returns their paths in that order.

    Markdown and HTML share the PNGs in `report-YYYY-MM-DD/`, drawn once: the skill
    chart, and a chart for the worst and best `charts` tickers and every failed one
    (every ticker when there are at most 2 x `charts`). Images the report no longer
    references are removed from that directory after the reports are in place.
    """
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown or not formats:
        raise UserError(
            f"report format {', '.join(map(repr, unknown)) or 'missing'}: expected one of {', '.join(FORMATS)}"
        )
    if charts < 0:
        raise UserError(f"charts per end {charts}: expected 0 or more")
    data = load_report(engine, as_of=as_of, preset=preset, charts=charts, delisted_after=delisted_after)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{data.as_of.isoformat()}"
    with_charts = {"md", "html"} & set(formats)
    drawn = draw_charts(data) if with_charts else None
    if drawn is not None:
        (out_dir / stem).mkdir(exist_ok=True)
        for name, png in drawn.pngs.items():
            _write_atomic(out_dir / stem / name, png)
    paths = []
    for fmt in dict.fromkeys(formats):
        path = out_dir / f"{stem}.{fmt}"
        if fmt == "csv":
            text = render_csv(data)
        else:
            assert drawn is not None, "charts are drawn for every md or html report"
            text = (render_markdown if fmt == "md" else render_html)(data, drawn, stem)
        _write_atomic(path, text.encode())
        paths.append(path)
    if drawn is not None:
        _prune_images(out_dir / stem, keep=set(drawn.pngs))
    return paths


def write_report(
    engine: sa.Engine, *, as_of: date | None, preset: str, fmt: Format, out_dir: Path, charts: int = DEFAULT_PER_END
) -> Path:
    """Writes the report in one format (see write_reports) and returns its path."""
    (path,) = write_reports(engine, as_of=as_of, preset=preset, formats=[fmt], out_dir=out_dir, charts=charts)
    return path


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
