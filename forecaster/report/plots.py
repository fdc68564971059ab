"""The report's PNGs: per ticker, actual vs predicted closes with the next forecast and its 80 % and 95 %
bands (or why the ticker failed), and the final training loss of each session's fit; for the report, skill
over time.

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
from PIL import Image

FIGSIZE_INCHES = (12.0, 3.6)
DPI = 100
FONT_PT = 9.0
ACTUAL_COLOUR = "black"
PREDICTED_COLOUR = "tab:blue"
NEXT_COLOUR = "tab:red"
FAILED_COLOUR = "#b00020"
#: Opaque tints of PREDICTED_COLOUR (tab:blue at 30 % and 14 % on white): the 80 % band on the 95 % one, the
#: legend's patches the same colours as the bands.
BAND_COLOURS = {80: "#bcd6e8", 95: "#e0ecf5"}
#: A failure reason is cut to this many characters in the chart's title (the caption below has all of it),
#: so the title never runs into the legend.
FAILURE_CHARS = 64
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class TickerSeries:
    """What one ticker's PNG shows.

    `sessions`, `actual`, `predicted` and the bounds are aligned by target session; an
    unrealised close is None (the next session's forecast), and so is a bound of a
    forecast without an interval. `loss_sessions` and `losses` are the last epoch's loss
    of the fit trained through each session, empty when there is none. `failure` says
    why a ticker without a next forecast failed ("failed at train: loss is NaN").
    """

    ticker: str
    sessions: Sequence[date]
    actual: Sequence[float | None]
    predicted: Sequence[float]
    lower_80: Sequence[float | None]
    upper_80: Sequence[float | None]
    lower_95: Sequence[float | None]
    upper_95: Sequence[float | None]
    loss_sessions: Sequence[date]
    losses: Sequence[float]
    failure: str | None = None


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
    """The figure as a PNG of at most 256 colours: a third of the bytes of matplotlib's own PNG (what the
    HTML report carries inline), and no different to the eye, lines and bands having few colours. Maximum
    coverage keeps the white white, where the faster octree makes it 254, a grey box on the page."""
    canvas = figure.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE).save(buffer, format="png")
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
        # "close": the source gives no currency, and the database stores none (README, "The daily report").
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
        self.band_handles = {
            level: Patch(color=colour, label=f"{level} % interval") for level, colour in BAND_COLOURS.items()
        }
        self.bands: list[Collection] = []
        self.no_forecasts = self.closes.text(
            0.5, 0.5, "no forecasts", ha="center", va="center", transform=self.closes.transAxes
        )
        (self.loss_line,) = self.loss.plot([], [], color="tab:green", linewidth=1.1, marker=".", markersize=3)
        self.loss_caption = self.loss.text(
            0.005, 0.95, "", transform=self.loss.transAxes, fontsize=FONT_PT - 1, color="dimgray", va="top"
        )

    def png(self, one: TickerSeries) -> bytes:
        if one.failure is None:
            self.title.set_text(one.ticker)
            self.title.set_color(ACTUAL_COLOUR)
        else:
            failure = one.failure if len(one.failure) <= FAILURE_CHARS else one.failure[: FAILURE_CHARS - 1] + "…"
            self.title.set_text(f"{one.ticker}: {failure}")
            self.title.set_color(FAILED_COLOUR)
        self._draw_closes(one)
        self._draw_loss(one)
        return _png(self.figure)

    def _draw_closes(self, one: TickerSeries) -> None:
        realised = [(s, a) for s, a in zip(one.sessions, one.actual, strict=True) if a is not None]
        self.actual.set_data([s for s, _ in realised], [a for _, a in realised])
        self.predicted.set_data(one.sessions, one.predicted)
        pending = [(s, p) for s, p, a in zip(one.sessions, one.predicted, one.actual, strict=True) if a is None]
        self.next_point.set_data([s for s, _ in pending], [p for _, p in pending])
        # The next forecast's value beside its point; a failed ticker's "no forecast" after its last close.
        labelled = pending[-1:] or (realised[-1:] if one.failure is not None else [])
        self.next_label.set_visible(bool(labelled))
        if labelled:
            (session, value), failed = labelled[0], not pending
            self.next_label.xy = (date2num(session), value)
            self.next_label.set_text("no forecast" if failed else f"{value:,.2f}")
            self.next_label.set_color(FAILED_COLOUR if failed else NEXT_COLOUR)
        for band in self.bands:
            band.remove()
        self.bands = []
        values = [v for v in (*one.predicted, *(a for _, a in realised)) if v is not None]
        drawn = []
        for level, lower, upper in ((95, one.lower_95, one.upper_95), (80, one.lower_80, one.upper_80)):
            bounded = [(s, lo, hi) for s, lo, hi in zip(one.sessions, lower, upper, strict=True) if lo is not None]
            if bounded:
                sessions, lows, highs = zip(*bounded, strict=True)
                self.bands.append(
                    self.closes.fill_between(sessions, lows, highs, color=BAND_COLOURS[level], linewidth=0, zorder=0)
                )
                values += [v for v in (*lows, *highs) if v is not None]
                drawn.append(self.band_handles[level])
        handles = [self.actual, self.predicted, *([self.next_point] if pending else []), *drawn[::-1]]
        _legend(self.closes, handles)
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
        """From zero, not on a log scale: a loss (squared or absolute error) is never below 0, and the daily
        fits of one ticker differ little, so from zero a wiggle looks as small as it is; a log axis over
        such a narrow range would magnify it again."""
        self.loss_line.set_data(one.loss_sessions, one.losses)
        self.loss_caption.set_text(
            "last epoch's training loss of the fit after each close, from 0"
            if one.losses
            else "no training loss recorded"
        )
        self.loss.yaxis.set_visible(bool(one.losses))
        if one.losses:
            self.loss.set_ylim(0, 1.5 * max(one.losses) or 1.0)  # the top third left to the caption


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
