"""The report's briefing: the headline numbers beside their targets and their change since the previous
session, coloured only when a test says the deviation is more than chance, and what changed since then.

The headline is over each ticker's last BRIEFING_WINDOW realised forecasts; its tests
aggregate each target session first (significance.py says why). The ticker flags are
over RANK_WINDOW, the least noisy window, and the briefing says how many of them chance
alone would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl

from forecaster.report.data import RANK_WINDOW, WINDOWS, ReportData
from forecaster.report.metrics import (
    LEVELS,
    coverage_chance,
    covered,
    pooled_metrics,
    trailing,
    window_metrics,
    worse_chance,
)
from forecaster.report.significance import HEADLINE_LEVEL, mean_test_p_value, poisson_tail

#: The headline numbers are over each ticker's last this many realised forecasts.
BRIEFING_WINDOW = WINDOWS[0]
#: What changed names at most this many tickers per line, and lists this many moves and misses.
NAMED = 10
TOP = 5

# Verdicts: the upper-case ones mark a problem (content.FLAGS shows them in red).
WORSE = "WORSE THAN NAIVE"
TOO_LOW = "TOO LOW"
TOO_HIGH = "TOO HIGH"
ABOVE_CHANCE = "MORE THAN CHANCE"
FAILURES = "FAILURES"
VERDICT_FLAGS = (WORSE, TOO_LOW, TOO_HIGH, ABOVE_CHANCE, FAILURES)


@dataclass(frozen=True)
class Headline:
    """One headline number: what it measures, its value now, its target, its change, its test and verdict."""

    measure: str
    now: str
    target: str
    change: str
    p_value: float | None
    verdict: str


@dataclass(frozen=True)
class Change:
    """One line of what changed since the previous session: what, how many, which."""

    what: str
    count: int
    details: str


_APE = 100.0 * (pl.col("predicted_close") - pl.col("actual_close")).abs() / pl.col("actual_close")
_NAIVE_APE = 100.0 * (pl.col("last_close") - pl.col("actual_close")).abs() / pl.col("actual_close")


def headlines(data: ReportData) -> list[Headline]:
    """Pooled skill, the coverage of each interval, tickers forecast and failed, and the tickers flagged."""
    shown = _shown(data)
    now = trailing(shown, BRIEFING_WINDOW)
    before = _before(data, shown)
    pooled, pooled_before = pooled_metrics(now, BRIEFING_WINDOW), pooled_metrics(before, BRIEFING_WINDOW)
    rows = [_skill(now, pooled["skill_ratio"], pooled_before["skill_ratio"])]
    if data.has_intervals:
        rows += [_coverage(now, level, pooled, pooled_before) for level in LEVELS]
    rows += _counts(data)
    rows += _flag_counts(data, before)
    return rows


def changes(data: ReportData) -> list[Change]:
    """What changed since the previous forecast session: failures new and cleared, tickers newly flagged
    and cleared, the biggest forecast moves, the biggest misses of the session just realised, price
    events of the session and the markets overdue. Lines with nothing to say are left out."""
    result: list[Change] = []
    failed_now = data.failures
    if data.previous is not None:
        failed_before = data.previous.failures
        new = [t for t in failed_now if t not in failed_before]
        result.append(Change("New failures", len(new), _names(new, lambda t: f"{t} ({failed_now[t].stage})")))
        cleared = sorted(t for t in failed_before if t not in failed_now and t in set(data.tickers["ticker"]))
        result.append(Change("Failures cleared (forecast again)", len(cleared), _names(cleared)))
        flagged_now, flagged_before = _flagged(data.tickers), _flagged(_window(_before(data, _shown(data))))
        for kind, label in (("coverage_off", "coverage"), ("worse_than_naive", "worse than naive")):
            newly = sorted(flagged_now[kind] - flagged_before[kind])
            gone = sorted(flagged_before[kind] - flagged_now[kind])
            result.append(Change(f"Newly flagged: {label}", len(newly), _names(newly)))
            result.append(Change(f"No longer flagged: {label}", len(gone), _names(gone)))
    else:
        result.append(Change("Failures", len(failed_now), _names(list(failed_now))))
    moves = data.tickers.filter(pl.col("predicted_change_pct") != 0).sort(
        pl.col("predicted_change_pct").abs(), descending=True
    )
    result.append(
        Change(
            "Biggest forecast moves",
            min(TOP, moves.height),
            ", ".join(
                f"{row['ticker']} {row['predicted_change_pct']:+.2f}%" for row in moves.head(TOP).rows(named=True)
            ),
        )
    )
    misses = _latest_realised(data).filter(pl.col("ape") > 0).sort("ape", descending=True).head(TOP)
    result.append(
        Change(
            "Biggest misses of the session just closed",
            misses.height,
            "; ".join(
                f"{r['ticker']} forecast {r['predicted_close']:,.2f}, closed {r['actual_close']:,.2f} "
                f"({r['ape']:.1f}% off; naive {r['naive_ape']:.1f}%)"
                for r in misses.iter_rows(named=True)
            ),
        )
    )
    session_events = data.events.filter(pl.col("session_date") == data.as_of)
    kinds = session_events.group_by("kind").len().sort("kind")
    result.append(
        Change(
            f"Price events on {data.as_of.isoformat()}",
            session_events.height,
            ", ".join(f"{n} {kind}" for kind, n in kinds.iter_rows()),
        )
    )
    result.append(
        Change(
            "Markets overdue",
            len(data.overdue),
            "; ".join(
                f"{o.calendar}: session {o.session.isoformat()} closed, latest forecast from "
                f"{o.latest_forecast.isoformat()}"
                for o in data.overdue
            ),
        )
    )
    return [change for change in result if change.count]


def alerts(data: ReportData) -> list[str]:
    """The headline problems that deserve an alert of their own: pooled skill worse than naive and an
    interval's coverage off, each only when its test rejects."""
    return [
        f"{h.measure}: {h.now} against a target of {h.target} (p = {p_text(h.p_value)}): {h.verdict}"
        for h in headlines(data)
        if h.verdict in (WORSE, TOO_LOW, TOO_HIGH)
    ]


# --- the headline numbers -------------------------------------------------------------------


def _shown(data: ReportData) -> pl.DataFrame:
    """The realised forecasts of the tickers forecast today."""
    return data.realised.filter(pl.col("ticker").is_in(data.tickers["ticker"].implode()))


def _before(data: ReportData, shown: pl.DataFrame) -> pl.DataFrame:
    """The realised forecasts as the previous session's report saw them (none without one)."""
    if data.previous is None:
        return shown.clear()
    return shown.filter(pl.col("target_session") <= data.previous.as_of)


def _window(rows: pl.DataFrame) -> pl.DataFrame:
    return window_metrics(rows, RANK_WINDOW)


def _per_session(rows: pl.DataFrame, expr: pl.Expr) -> list[float]:
    """The mean of `expr` over each target session's forecasts, oldest session first."""
    return rows.group_by("target_session").agg(expr.mean().alias("value")).sort("target_session")["value"].to_list()


def _skill(rows: pl.DataFrame, now: float | None, before: float | None) -> Headline:
    p_value = None if now is None else mean_test_p_value(_per_session(rows, _APE - _NAIVE_APE), 0.0)
    if now is None:
        verdict = "nothing to measure"
    elif p_value is None:
        verdict = "too few sessions to test"
    elif p_value <= HEADLINE_LEVEL:
        verdict = WORSE if now > 1 else "better than naive"
    else:
        verdict = "no different from naive"
    return Headline(
        f"Pooled skill, MAPE / naive MAPE, last {BRIEFING_WINDOW}",
        _number(now, ".3f"),
        "below 1",
        _delta(now, before, "+.3f"),
        p_value,
        verdict,
    )


def _coverage(
    rows: pl.DataFrame, level: int, now: dict[str, float | None], before: dict[str, float | None]
) -> Headline:
    name = f"coverage_{level}_pct"
    with_interval = rows.filter(pl.col(f"lower_{level}").is_not_null())
    rate = level / 100
    tickers = with_interval.group_by("target_session").len()["len"].to_list()
    # Independent tickers alone would vary each session's coverage by rate (1 - rate) / tickers.
    independent = sum(rate * (1 - rate) / n for n in tickers) / len(tickers) if tickers else 0.0
    p_value = mean_test_p_value(_per_session(with_interval, covered(level)), rate, least_variance=independent)
    value = now[name]
    if p_value is not None and p_value <= HEADLINE_LEVEL and value is not None:
        verdict = TOO_LOW if value < level else TOO_HIGH
    else:
        verdict = "on target" if p_value is not None else "too few sessions to test"
    return Headline(
        f"Coverage of the {level} % interval, last {BRIEFING_WINDOW}",
        _number(value, ".1f", "%"),
        f"{level} %",
        _delta(value, before[name], "+.1f", " pts"),
        p_value,
        verdict,
    )


def _counts(data: ReportData) -> list[Headline]:
    forecast, failed = data.tickers.height, len(data.failures)
    previous = data.previous
    return [
        Headline(
            "Tickers forecast",
            f"{forecast:,}",
            f"all {forecast + failed:,}",
            _delta(forecast, len(previous.tickers) if previous else None, "+,d"),
            None,
            "",
        ),
        Headline(
            "Tickers failed",
            f"{failed:,}",
            "0",
            _delta(failed, len(previous.failures) if previous else None, "+,d"),
            None,
            FAILURES if failed else "",
        ),
    ]


def _flag_counts(data: ReportData, before: pl.DataFrame) -> list[Headline]:
    """The tickers flagged over RANK_WINDOW, beside how many chance alone would flag."""
    t = data.tickers
    flagged_before = _flagged(_window(before)) if data.previous is not None else None
    chance = {
        "coverage_off": sum(coverage_chance(n) for n in t[f"n_interval_{RANK_WINDOW}"]),
        "worse_than_naive": sum(worse_chance(n) for n in t[f"n_decided_{RANK_WINDOW}"].fill_null(0)),
    }
    rows = []
    for kind, label in (("coverage_off", "coverage off"), ("worse_than_naive", "worse than naive")):
        if kind == "coverage_off" and not data.has_intervals:
            continue
        count = int(t[f"{kind}_{RANK_WINDOW}"].fill_null(False).sum())
        p_value = poisson_tail(count, chance[kind])
        rows.append(
            Headline(
                f"Tickers flagged {label}, last {RANK_WINDOW}",
                f"{count:,}",
                f"chance alone: {chance[kind]:.1f}",
                _delta(count, len(flagged_before[kind]) if flagged_before is not None else None, "+,d"),
                p_value,
                ABOVE_CHANCE if p_value <= HEADLINE_LEVEL else "within chance",
            )
        )
    return rows


def _flagged(metrics: pl.DataFrame) -> dict[str, set[str]]:
    return {
        kind: set(metrics.filter(pl.col(f"{kind}_{RANK_WINDOW}").fill_null(False))["ticker"])
        for kind in ("coverage_off", "worse_than_naive")
    }


def _latest_realised(data: ReportData) -> pl.DataFrame:
    """Each ticker's forecast for the session it was last forecast after: the session just closed."""
    made_after = data.tickers.select("ticker", pl.col("as_of").alias("target_session"))
    return data.realised.join(made_after, on=["ticker", "target_session"]).with_columns(
        _APE.alias("ape"), _NAIVE_APE.alias("naive_ape")
    )


# --- formatting -----------------------------------------------------------------------------


def _number(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _delta(now: float | None, before: float | None, spec: str, suffix: str = "") -> str:
    if now is None or before is None:
        return "n/a"
    shown = f"{now - before:{spec}}"
    if shown.startswith("-") and not shown.strip("-0.,"):  # a change that rounds to nothing is +0
        shown = "+" + shown[1:]
    return f"{shown}{suffix}"


def p_text(value: float | None) -> str:
    """A p-value as the briefing prints it."""
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _names(tickers: Iterable[str], name: Callable[[str], str] = str) -> str:
    listed = list(tickers)
    text = ", ".join(name(t) for t in listed[:NAMED])
    return text + (f" and {len(listed) - NAMED} more" if len(listed) > NAMED else "")
