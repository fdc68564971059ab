"""One small PNG per ticker: actual vs predicted closes, and the loss curve of the latest fit.

Built on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot: no
global figure registry to leak into and no backend to select. Drawing text is most
of the cost, and building a figure costs as much again, so one figure is built per
report and only its data changes from ticker to ticker; titles sit at fixed places,
ticks are few and there is no grid. About 80 ms a ticker on one idle core.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, NullLocator

FIGSIZE_INCHES = (8.0, 2.6)
DPI = 80
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class TickerSeries:
    """What one ticker's PNG shows.

    `sessions`, `actual` and `predicted` are aligned by target session; an unrealised
    close is None (the next session's forecast). `epochs` and `losses` are the
    per-epoch mean batch losses of the latest fit, empty when there is none.
    """

    ticker: str
    sessions: Sequence[date]
    actual: Sequence[float | None]
    predicted: Sequence[float]
    epochs: Sequence[int]
    losses: Sequence[float]


def ticker_pngs(series: Iterable[TickerSeries]) -> Iterator[tuple[str, bytes]]:
    """(ticker, PNG bytes) for each series, in order, all drawn on one reused figure."""
    figure = Figure(figsize=FIGSIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    closes, loss = figure.subplots(1, 2, width_ratios=(3, 2))
    figure.subplots_adjust(left=0.06, right=0.985, bottom=0.12, top=0.88, wspace=0.3)

    closes.xaxis_date()
    locator = AutoDateLocator(minticks=3, maxticks=5)
    closes.xaxis.set_major_locator(locator)
    closes.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    (actual_line,) = closes.plot([], [], color="black", linewidth=1.2, marker=".", markersize=2, label="actual")
    (predicted_line,) = closes.plot(
        [], [], color="tab:blue", linewidth=1.0, linestyle="--", marker=".", markersize=3, label="predicted"
    )
    (next_point,) = closes.plot(
        [], [], color="tab:red", marker="o", markersize=5, linestyle="none", label="next session"
    )
    # Above the panel, right of the title: inside, it would hide the lines.
    closes.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, frameon=False, borderaxespad=0.1)
    no_forecasts = _placeholder(closes, "no forecasts")

    # Titles as figure text at fixed places: axes titles and labels are re-placed around the ticks at every draw.
    title = figure.text(closes.get_position().x0, 0.92, "", fontsize=9)
    figure.text(loss.get_position().x0, 0.92, "training loss by epoch, latest fit", fontsize=9)
    (loss_line,) = loss.plot([], [], color="tab:green", linewidth=1.0)
    loss.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    no_fit = _placeholder(loss, "no fit for this session")

    closes.yaxis.set_major_locator(MaxNLocator(nbins=4))
    for axes in (closes, loss):
        axes.tick_params(labelsize=7)

    for one in series:
        title.set_text(f"{one.ticker}: close")
        realised = [(s, a) for s, a in zip(one.sessions, one.actual) if a is not None]
        actual_line.set_data([s for s, _ in realised], [a for _, a in realised])
        predicted_line.set_data(one.sessions, one.predicted)
        pending = [(s, p) for s, p, a in zip(one.sessions, one.predicted, one.actual) if a is None]
        next_point.set_data([s for s, _ in pending], [p for _, p in pending])
        _show_data(closes, no_forecasts, bool(one.sessions))

        loss_line.set_data(one.epochs, one.losses)
        # A cold fit's loss falls by orders of magnitude: log scale then (a log axis within one decade has no
        # labelled tick). Minor ticks unlabelled, and so cheap to draw.
        spans_decades = bool(one.losses) and min(one.losses) > 0 and max(one.losses) >= 10 * min(one.losses)
        loss.set_yscale("log" if spans_decades else "linear")
        if not spans_decades:  # a warm fit's loss moves in the 5th digit: plain numbers, no offset
            loss.ticklabel_format(axis="y", useOffset=False)
        loss.yaxis.set_minor_locator(NullLocator())
        _show_data(loss, no_fit, bool(one.losses))

        if one.sessions:
            # At least a week shown, with a day of margin: autoscaling a single session gives a zero-width
            # range the date locator rejects, and a span of a day or two gets hourly ticks.
            last = max(one.sessions)
            closes.set_xlim(min(min(one.sessions), last - _WEEK) - _DAY, last + _DAY)
        closes.relim()
        closes.autoscale_view(scalex=False)
        loss.relim()
        loss.autoscale_view()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        yield one.ticker, buffer.getvalue()


def _placeholder(axes: Axes, message: str) -> Text:
    return axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, fontsize=8, color="gray")


def _show_data(axes: Axes, placeholder: Text, has_data: bool) -> None:
    """Axes with data show ticks, grid and legend; empty axes show only the placeholder."""
    axes.xaxis.set_visible(has_data)
    axes.yaxis.set_visible(has_data)
    if legend := axes.get_legend():
        legend.set_visible(has_data)
    placeholder.set_visible(not has_data)
