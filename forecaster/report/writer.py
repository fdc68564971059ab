"""The daily report of one forecast session: what was forecast, how past forecasts fared, how the runs went.

`write_report` reads the tables once (`load_report`), then writes one dated file in
markdown, HTML or CSV, plus one PNG per ticker for markdown and HTML. Every file is
written to a temporary name and renamed into place, images first, so a reader never
sees half a report or a report whose images are missing; another day's files are
never touched.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import date
from hashlib import sha1
from pathlib import Path
from typing import Any, Literal, get_args

import sqlalchemy as sa

from forecaster.errors import UserError
from forecaster.report.data import ReportData, load_report
from forecaster.report.plots import TickerSeries, ticker_pngs
from forecaster.report.render import render_csv, render_html, render_markdown

Format = Literal["md", "html", "csv"]
FORMATS: tuple[str, ...] = get_args(Format)


def write_report(engine: sa.Engine, *, as_of: date | None, preset: str, fmt: Format, out_dir: Path) -> Path:
    """Writes `report-YYYY-MM-DD.{fmt}` into `out_dir` (and its PNGs) and returns its path.

    Markdown and HTML reference `report-YYYY-MM-DD/TICKER.png` by relative path; the
    images of tickers no longer in that day's report are removed after the report is
    in place.
    """
    if fmt not in FORMATS:
        raise UserError(f"report format {fmt!r}: expected one of {', '.join(FORMATS)}")
    data = load_report(engine, as_of=as_of, preset=preset)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{data.as_of.isoformat()}"
    path = out_dir / f"{stem}.{fmt}"
    if fmt == "csv":
        _write_atomic(path, render_csv(data).encode())
        return path
    images = _write_images(data, out_dir / stem)
    text = render_markdown(data, images) if fmt == "md" else render_html(data, images)
    _write_atomic(path, text.encode())
    _prune_images(out_dir / stem, keep={Path(relative).name for relative in images.values()})
    return path


# --- images -------------------------------------------------------------------------------


def _image_name(ticker: str) -> str:
    """A file name for any ticker ("^GSPC", "BRK/B"): unsafe characters replaced, plus a hash if any were."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", ticker)
    if safe != ticker or safe.startswith("."):
        safe = f"{safe}-{sha1(ticker.encode()).hexdigest()[:8]}"
    return f"{safe}.png"


def _write_images(data: ReportData, directory: Path) -> dict[str, str]:
    """Writes one PNG per ticker; returns {ticker: path relative to the report}."""
    directory.mkdir(exist_ok=True)
    realised = data.realised.partition_by("ticker", as_dict=True)
    losses = data.losses.partition_by("ticker", as_dict=True)

    def series(row: dict[str, Any]) -> TickerSeries:
        past = realised.get((row["ticker"],), data.realised.clear())
        fit = losses.get((row["ticker"],), data.losses.clear())
        return TickerSeries(
            ticker=row["ticker"],
            sessions=[*past["target_session"], row["target_session"]],
            actual=[*past["actual_close"], None],
            predicted=[*past["predicted_close"], row["predicted_close"]],
            epochs=fit["epoch"].to_list(),
            losses=fit["loss"].to_list(),
        )

    images = {}
    for ticker, png in ticker_pngs(series(row) for row in data.tickers.iter_rows(named=True)):
        name = _image_name(ticker)
        _write_atomic(directory / name, png)
        images[ticker] = f"{directory.name}/{name}"
    return images


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
