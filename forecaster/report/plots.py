"""The report's PNGs: per ticker, actual vs predicted closes with the next forecast and its 80 % band, and
the final training loss of each session's fit; for the report, skill over time.

Built on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot: no
global figure registry to leak into and no backend to select. Every chart is
1200 x 360 px (12 x 3.6 in at 100 dpi), the width of the HTML page, with 9 pt
(12.5 px) tick labels. Drawing text is most of the cost and building a figure costs
as much again, so the ticker charts share one figure whose data change from ticker
to ticker; titles sit at fixed places and ticks are few.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.dates import AutoDateLocator, DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

FIGSIZE_INCHES = (12.0, 3.6)
DPI = 100
FONT_PT = 9.0
ACTUAL_COLOUR = "black"
PREDICTED_COLOUR = "tab:blue"
NEXT_COLOUR = "tab:red"
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class TickerSeries:
    """What one ticker's PNG shows.

    `sessions`, `actual`, `predicted`, `lower_80` and `upper_80` are aligned by target
    session; an unrealised close is None (the next session's forecast), and so is a
    bound of a forecast without an interval. `loss_sessions` and `losses` are the last
    epoch's loss of the fit trained through each session, empty when there is none.
    """

    ticker: str
    sessions: Sequence[date]
    actual: Sequence[float | None]
    predicted: Sequence[float]
    lower_80: Sequence[float | None]
    upper_80: Sequence[float | None]
    loss_sessions: Sequence[date]
    losses: Sequence[float]


@dataclass(frozen=True)
class SkillSeries:
    """One line of the skill-over-time chart: skill at each target session."""

    label: str
    sessions: Sequence[date]
    skill: Sequence[float]


def _figure(rows: int, height_ratios: Sequence[int]) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=FIGSIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(rows, 1, sharex=True, height_ratios=height_ratios, squeeze=False)[:, 0])
    figure.subplots_adjust(left=0.07, right=0.965, bottom=0.13, top=0.86, hspace=0.12)
    # Evenly spaced from the first date: with multiples of the interval, ticks bunch up at each month start.
    locator = AutoDateLocator(minticks=4, maxticks=9, interval_multiples=False)
    axes[-1].xaxis_date()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    for one in axes:
        one.tick_params(labelsize=FONT_PT, labelbottom=one is axes[-1])
        one.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _legend(axes: Axes, handles: list) -> None:
    # Above the panel, right of the title: inside, it would hide the lines.
    axes.legend(
        handles=handles,
        fontsize=FONT_PT,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=len(handles),
        frameon=False,
        borderaxespad=0.2,
    )


class _TickerFigure:
    """The one figure every ticker chart is drawn on: its artists are made once, their data set per ticker."""

    def __init__(self) -> None:
        self.figure, (self.closes, self.loss) = _figure(2, (3, 1))
        self.closes.set_ylabel("close", fontsize=FONT_PT)
        self.loss.set_ylabel("loss", fontsize=FONT_PT)
        self.loss.set_xlabel("session", fontsize=FONT_PT)
        self.closes.yaxis.set_major_locator(MaxNLocator(nbins=5))
        self.loss.yaxis.set_major_locator(MaxNLocator(nbins=3))
        self.loss.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.4g}"))
        self.title = self.figure.text(0.07, 0.93, "", fontsize=11, fontweight="bold")
        (self.actual,) = self.closes.plot([], [], color=ACTUAL_COLOUR, linewidth=1.4, label="actual close")
        (self.predicted,) = self.closes.plot(
            [], [], color=PREDICTED_COLOUR, linewidth=1.1, linestyle="--", marker=".", markersize=4,
            label="predicted for that session",
        )  # fmt: skip
        (self.next_point,) = self.closes.plot(
            [], [], color=NEXT_COLOUR, marker="o", markersize=7, linestyle="none", label="next session"
        )
        # Right of the point, in a margin kept free for it: anywhere else it would hide the latest closes.
        self.next_label = self.closes.annotate(
            "", xy=(0, 0), xytext=(9, 0), textcoords="offset points", va="center", fontsize=FONT_PT, color=NEXT_COLOUR
        )
        self.band_handle = Patch(color=PREDICTED_COLOUR, alpha=0.2, label="80 % interval")
        self.band: Collection | None = None
        self.no_forecasts = self.closes.text(
            0.5, 0.5, "no forecasts", ha="center", va="center", transform=self.closes.transAxes
        )
        (self.loss_line,) = self.loss.plot([], [], color="tab:green", linewidth=1.1, marker=".", markersize=3)
        self.loss_caption = self.loss.text(
            0.005, 0.95, "", transform=self.loss.transAxes, fontsize=FONT_PT - 1, color="dimgray", va="top"
        )

    def png(self, one: TickerSeries) -> bytes:
        self.title.set_text(one.ticker)
        self._draw_closes(one)
        self._draw_loss(one)
        return _png(self.figure)

    def _draw_closes(self, one: TickerSeries) -> None:
        realised = [(s, a) for s, a in zip(one.sessions, one.actual, strict=True) if a is not None]
        self.actual.set_data([s for s, _ in realised], [a for _, a in realised])
        self.predicted.set_data(one.sessions, one.predicted)
        pending = [(s, p) for s, p, a in zip(one.sessions, one.predicted, one.actual, strict=True) if a is None]
        self.next_point.set_data([s for s, _ in pending], [p for _, p in pending])
        self.next_label.set_visible(bool(pending))
        if pending:
            self.next_label.xy = (date2num(pending[-1][0]), pending[-1][1])
            self.next_label.set_text(f"{pending[-1][1]:,.2f}")
        if self.band is not None:
            self.band.remove()
            self.band = None
        bounded = [
            (s, lo, hi) for s, lo, hi in zip(one.sessions, one.lower_80, one.upper_80, strict=True) if lo is not None
        ]
        if bounded:
            sessions, lower, upper = zip(*bounded, strict=True)
            self.band = self.closes.fill_between(sessions, lower, upper, color=PREDICTED_COLOUR, alpha=0.2, linewidth=0)
        _legend(self.closes, [self.actual, self.predicted, self.next_point, *([self.band_handle] if bounded else [])])
        values = [v for v in (*one.predicted, *(a for _, a in realised)) if v is not None]
        values += [v for _, lo, hi in bounded for v in (lo, hi) if v is not None]
        self.no_forecasts.set_visible(not values)
        self.closes.yaxis.set_visible(bool(values))
        if values:
            low, high = min(values), max(values)
            margin = 0.05 * (high - low) or 0.01 * abs(high) or 1.0
            self.closes.set_ylim(low - margin, high + margin)
            # At least a week shown: a single session would give a zero-width range the date locator rejects,
            # and a span of a day or two gets hourly ticks. On the right, room for the next forecast's label.
            last = max(one.sessions)
            first = min(min(one.sessions), last - _WEEK) - _DAY
            self.closes.set_xlim(first, last + max(_DAY, (last - first) * 0.07))

    def _draw_loss(self, one: TickerSeries) -> None:
        self.loss_line.set_data(one.loss_sessions, one.losses)
        self.loss_caption.set_text(
            "last epoch's training loss of the fit after each close" if one.losses else "no training loss recorded"
        )
        self.loss.yaxis.set_visible(bool(one.losses))
        if one.losses:
            low, high = min(one.losses), max(one.losses)
            margin = 0.1 * (high - low) or 0.01 * abs(high) or 1.0
            self.loss.set_ylim(low - margin, high + margin * 6)  # the top third left to the caption


def ticker_pngs(series: Iterable[TickerSeries]) -> Iterator[tuple[str, bytes]]:
    """(ticker, PNG bytes) for each series, in order, all drawn on one reused figure."""
    figure = _TickerFigure()
    for one in series:
        yield one.ticker, figure.png(one)


def skill_png(pooled: SkillSeries, tickers: Sequence[SkillSeries], *, window: int) -> bytes:
    """Skill over the last `window` sessions at each session: pooled (thick) and a few tickers (thin)."""
    figure, (axes,) = _figure(1, (1,))
    figure.text(0.07, 0.93, f"Skill over the last {window} sessions", fontsize=11, fontweight="bold")
    axes.axhline(1.0, color="gray", linewidth=1.0, linestyle=":", label="naive (last close) = 1")
    axes.plot(pooled.sessions, pooled.skill, color=ACTUAL_COLOUR, linewidth=2.2, label=pooled.label)
    for one in tickers:
        axes.plot(one.sessions, one.skill, linewidth=1.1, label=one.label)
    axes.set_ylabel("error / naive error", fontsize=FONT_PT)
    axes.set_xlabel("target session", fontsize=FONT_PT)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    _legend(axes, axes.get_lines())
    figure.text(
        0.99, 0.02, "below 1: better than the naive forecast", ha="right", fontsize=FONT_PT - 1, color="dimgray"
    )
    return _png(figure)
