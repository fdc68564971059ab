"""A report's charts, drawn once for every format: the tickers of ReportData.chart_groups, and skill over
time, pooled and for the worst few tickers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from hashlib import sha1
from typing import Any

import polars as pl

from forecaster.report.data import RANK_WINDOW, SKILL_WINDOW, WINDOWS, ReportData
from forecaster.report.metrics import rolling_skill, trailing
from forecaster.report.plots import SkillSeries, TickerSeries, skill_png, ticker_pngs

#: The skill-over-time chart draws this many of the worst tickers beside the pooled line.
WORST_IN_SKILL_CHART = 3
SKILL_IMAGE = "skill.png"


@dataclass(frozen=True)
class Charts:
    """A report's PNGs by file name, and how the report lays them out."""

    #: File name of the skill-over-time chart; None until some ticker has SKILL_WINDOW realised forecasts.
    skill: str | None
    #: The worst tickers drawn in the skill chart, worst first.
    skill_tickers: list[str]
    #: Ticker -> file name of its chart.
    files: dict[str, str]
    #: File name -> PNG bytes.
    pngs: dict[str, bytes]


def image_name(ticker: str) -> str:
    """A file name for any ticker ("^GSPC", "BRK/B"): unsafe characters replaced, plus a hash if any were.

    Every ticker chart starts with "close-", so none can take the skill chart's name.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", ticker)
    if safe != ticker:
        safe = f"{safe}-{sha1(ticker.encode()).hexdigest()[:8]}"
    return f"close-{safe}.png"


def draw_charts(data: ReportData) -> Charts:
    """Draws the skill chart and the chart of every ticker of data.chart_groups, each once."""
    tickers = [ticker for group in data.chart_groups for ticker in group.tickers]
    files = {ticker: image_name(ticker) for ticker in tickers}
    pngs = {files[ticker]: png for ticker, png in ticker_pngs(_ticker_series(data, ticker) for ticker in tickers)}
    skill_tickers = data.tickers.filter(pl.col(f"skill_ratio_{RANK_WINDOW}").is_not_null())["ticker"].to_list()
    skill_tickers = skill_tickers[:WORST_IN_SKILL_CHART]
    skill = _skill_chart(data, skill_tickers)
    if skill is not None:
        pngs[SKILL_IMAGE] = skill
    return Charts(SKILL_IMAGE if skill is not None else None, skill_tickers, files, pngs)


def _ticker_series(data: ReportData, ticker: str) -> TickerSeries:
    past = trailing(data.realised.filter(pl.col("ticker") == ticker), max(WINDOWS))
    rows: list[dict[str, Any]] = [*past.iter_rows(named=True)]
    # Forecast today: its next session, with the actual close not known yet.
    rows += [
        {**row, "actual_close": None} for row in data.tickers.filter(pl.col("ticker") == ticker).iter_rows(named=True)
    ]
    first = rows[0]["target_session"] if rows else data.as_of
    losses = data.losses.filter(pl.col("ticker") == ticker, pl.col("trained_through") >= first)
    failure = data.failures.get(ticker)
    return TickerSeries(
        ticker=ticker,
        sessions=[row["target_session"] for row in rows],
        actual=[row["actual_close"] for row in rows],
        predicted=[row["predicted_close"] for row in rows],
        lower_80=[row["lower_80"] for row in rows],
        upper_80=[row["upper_80"] for row in rows],
        lower_95=[row["lower_95"] for row in rows],
        upper_95=[row["upper_95"] for row in rows],
        loss_sessions=losses["trained_through"].to_list(),
        losses=losses["loss"].to_list(),
        failure=None if failure is None else f"failed at {failure.stage}: {failure.reason}",
    )


def _skill_chart(data: ReportData, worst: list[str]) -> bytes | None:
    shown = data.realised.filter(pl.col("ticker").is_in(data.tickers["ticker"].implode()))
    pooled = rolling_skill(shown, SKILL_WINDOW)
    if pooled.is_empty():
        return None
    per_ticker = rolling_skill(shown.filter(pl.col("ticker").is_in(worst)), SKILL_WINDOW, by_ticker=True)
    lines = [
        SkillSeries(ticker, one["target_session"].to_list(), one["skill_ratio"].to_list())
        for ticker in worst
        for one in [per_ticker.filter(pl.col("ticker") == ticker)]
    ]
    label = f"all {data.tickers.height} tickers, pooled" if data.tickers.height > 1 else "pooled"
    return skill_png(
        SkillSeries(label, pooled["target_session"].to_list(), pooled["skill_ratio"].to_list()),
        lines,
        window=SKILL_WINDOW,
    )
