"""Forecast accuracy and prediction-interval metrics on the realised rows of the `prediction_accuracy` view.

Every function takes a polars frame with at least `predicted_close`, `actual_close`
and `last_close` (one row per realised forecast, `actual_close` never null), plus
`lower_80`, `upper_80`, `lower_95`, `upper_95` for the interval metrics (null for a
forecast made without an interval), and returns None, not 0 or NaN, when there is
nothing to measure. The errors, coverage and interval scores are recomputed from
those prices with the view's definitions, so a frame built by hand in a test means
the same as a frame read from the database. Every percentage is in percent (0..100).
"""

from __future__ import annotations

import polars as pl

from forecaster.model.intervals import LEVELS as INTERVAL_LEVELS
from forecaster.report.significance import TICKER_LEVEL, binomial_p_value, chance_rate

#: Prediction-interval levels, in percent (the interval method's, forecaster.model.intervals).
LEVELS: tuple[int, ...] = tuple(round(100 * level) for level in INTERVAL_LEVELS)

_PREDICTED = pl.col("predicted_close")
_ACTUAL = pl.col("actual_close")
_LAST = pl.col("last_close")

_ERROR = _PREDICTED - _ACTUAL
_NAIVE_ERROR = _LAST - _ACTUAL
# Absolute errors in percent of the actual close: comparable across tickers of any price.
_APE = 100.0 * _ERROR.abs() / _ACTUAL
_NAIVE_APE = 100.0 * _NAIVE_ERROR.abs() / _ACTUAL


def _sign(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr > 0).then(1).when(expr < 0).then(-1).otherwise(0)


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, null (undefined) when the denominator is 0."""
    return pl.when(denominator > 0).then(numerator / denominator)


def _bounds(level: int) -> tuple[pl.Expr, pl.Expr]:
    return pl.col(f"lower_{level}"), pl.col(f"upper_{level}")


def covered(level: int) -> pl.Expr:
    """1.0 when the close fell inside the interval (bounds included), 0.0 outside, null without an interval."""
    lower, upper = _bounds(level)
    return ((lower <= _ACTUAL) & (upper >= _ACTUAL)).cast(pl.Float64)


def width(level: int) -> pl.Expr:
    """The interval's width, in price units."""
    lower, upper = _bounds(level)
    return upper - lower


def winkler(level: int) -> pl.Expr:
    """The interval score, as in the view: width, plus 2/alpha times how far outside the close fell."""
    lower, upper = _bounds(level)
    penalty = 2.0 / (1.0 - level / 100.0)
    return upper - lower + penalty * ((lower - _ACTUAL).clip(lower_bound=0) + (_ACTUAL - upper).clip(lower_bound=0))


#: The per-forecast scores of the prediction_accuracy view, by its column names; the view computes
#: them in SQL (migrations/), tests/report/test_scores.py holds the two definitions equal.
ROW_SCORES: dict[str, pl.Expr] = {
    "error": _ERROR,
    "abs_error": _ERROR.abs(),
    "pct_error": _APE,
    "naive_error": _NAIVE_ERROR,
    "naive_abs_error": _NAIVE_ERROR.abs(),
    "direction_hit": (_sign(_PREDICTED - _LAST) == _sign(_ACTUAL - _LAST)).cast(pl.Int64),
    **{f"covered_{level}": covered(level).cast(pl.Int64) for level in LEVELS},
    **{f"winkler_{level}": winkler(level) for level in LEVELS},
}

_MAE = _ERROR.abs().mean()
_NAIVE_MAE = _NAIVE_ERROR.abs().mean()

#: name -> aggregate expression; valid in `select` (one ticker) and in `group_by(...).agg` (many).
ACCURACY: dict[str, pl.Expr] = {
    "mae": _MAE,
    "rmse": _ERROR.pow(2).mean().sqrt(),
    "mape_pct": _APE.mean(),
    # As in the view: a hit when the forecast moved (up, down or flat) the way the close did.
    "directional_accuracy_pct": 100.0 * (_sign(_PREDICTED - _LAST) == _sign(_ACTUAL - _LAST)).cast(pl.Float64).mean(),
    # MAE of the model over MAE of "tomorrow closes where today did"; undefined when the naive error is 0.
    "skill_ratio": _ratio(_MAE, _NAIVE_MAE),
}

#: Interval metrics over the forecasts that have an interval (the others are ignored).
INTERVALS: dict[str, pl.Expr] = {
    "n_interval": pl.col("lower_80").is_not_null().sum().cast(pl.Int64),
    **{f"coverage_{level}_pct": 100.0 * covered(level).mean() for level in LEVELS},
    **{f"width_{level}_pct": (100.0 * width(level) / _LAST).mean() for level in LEVELS},
    **{f"winkler_{level}_pct": (100.0 * winkler(level) / _LAST).mean() for level in LEVELS},
}

METRICS: dict[str, pl.Expr] = {**ACCURACY, **INTERVALS}

#: Pooled over every ticker's forecasts: skill as MAPE over naive MAPE, so a ticker weighs the same at any price.
POOLED: dict[str, pl.Expr] = {
    "skill_ratio": _ratio(_APE.sum(), _NAIVE_APE.sum()),
    "mape_pct": ACCURACY["mape_pct"],
    "directional_accuracy_pct": ACCURACY["directional_accuracy_pct"],
    **{name: expr for name, expr in INTERVALS.items() if name != "n_interval"},
}


def _scalar(rows: pl.DataFrame, name: str) -> float | None:
    value = rows.select(METRICS[name].alias(name)).item()
    return None if value is None else float(value)


def mae(rows: pl.DataFrame) -> float | None:
    """Mean absolute error of the forecasts, in price units."""
    return _scalar(rows, "mae")


def rmse(rows: pl.DataFrame) -> float | None:
    """Root mean squared error of the forecasts, in price units."""
    return _scalar(rows, "rmse")


def mape(rows: pl.DataFrame) -> float | None:
    """Mean absolute percentage error, in percent of the actual close."""
    return _scalar(rows, "mape_pct")


def directional_accuracy(rows: pl.DataFrame) -> float | None:
    """Percentage (0..100) of forecasts that called the direction of the move from the last close."""
    return _scalar(rows, "directional_accuracy_pct")


def skill_ratio(rows: pl.DataFrame) -> float | None:
    """MAE(model) / MAE(naive last-close forecast): above 1 the model is worse than naive."""
    return _scalar(rows, "skill_ratio")


def coverage(rows: pl.DataFrame, level: int) -> float | None:
    """Percentage of the forecasts with an interval whose close fell inside the `level` % interval."""
    return _scalar(rows, f"coverage_{level}_pct")


def interval_width(rows: pl.DataFrame, level: int) -> float | None:
    """Mean width of the `level` % interval, in percent of the last close."""
    return _scalar(rows, f"width_{level}_pct")


def winkler_score(rows: pl.DataFrame, level: int) -> float | None:
    """Mean interval (Winkler) score of the `level` % interval, in percent of the last close; lower is better."""
    return _scalar(rows, f"winkler_{level}_pct")


def trailing(rows: pl.DataFrame, window: int) -> pl.DataFrame:
    """The last `window` realised rows of each ticker, by target session."""
    return rows.sort("ticker", "target_session").group_by("ticker", maintain_order=True).tail(window)


#: Per-ticker counts the significance tests read: closes inside each interval, and of the forecasts
#: whose error differs from the naive forecast's, those with the larger error.
_COUNTS: dict[str, pl.Expr] = {
    **{f"hits_{level}": covered(level).sum().cast(pl.Int64) for level in LEVELS},
    "n_decided": (_ERROR.abs() != _NAIVE_ERROR.abs()).sum().cast(pl.Int64),
    "losses_vs_naive": (_ERROR.abs() > _NAIVE_ERROR.abs()).sum().cast(pl.Int64),
}


def coverage_p_value(hits: dict[int, int], n: int) -> float | None:
    """Whether closes inside the intervals are too few or too many for their levels: the smallest
    binomial p-value over the levels, times their number (Bonferroni); None without an interval."""
    if n == 0:
        return None
    return min(1.0, len(LEVELS) * min(binomial_p_value(hits[level], n, level / 100) for level in LEVELS))


def coverage_chance(n: int) -> float:
    """The probability (at most) that a ticker with `n` forecasts inside their intervals at exactly the
    nominal rates is flagged anyway."""
    return sum(chance_rate(n, level / 100, TICKER_LEVEL / len(LEVELS)) for level in LEVELS)


def worse_chance(n_decided: int) -> float:
    """The probability that a ticker exactly as good as naive over `n_decided` forecasts is flagged worse."""
    return chance_rate(n_decided, 0.5, TICKER_LEVEL, side=+1)


def _flags(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
    """The tests' p-values and flags of each ticker's row of counts."""
    coverage_p, sign_p = [], []
    for row in frame.iter_rows(named=True):
        hits = {level: row[f"hits_{level}"] for level in LEVELS}
        coverage_p.append(coverage_p_value(hits, row[f"n_interval{suffix}"]))
        sign_p.append(binomial_p_value(row["losses_vs_naive"], row[f"n_decided{suffix}"], 0.5))
    return frame.with_columns(
        pl.Series(f"skill_sign_p{suffix}", sign_p, pl.Float64),
        pl.Series(f"coverage_p{suffix}", coverage_p, pl.Float64),
    ).with_columns(
        (
            (pl.col(f"skill_sign_p{suffix}") <= TICKER_LEVEL)
            & (2 * pl.col("losses_vs_naive") > pl.col(f"n_decided{suffix}"))
            & (pl.col(f"skill_ratio{suffix}") > 1)
        ).alias(f"worse_than_naive{suffix}"),
        (pl.col(f"coverage_p{suffix}") <= TICKER_LEVEL).alias(f"coverage_off{suffix}"),
    )


def window_metrics(rows: pl.DataFrame, window: int) -> pl.DataFrame:
    """One row per ticker with realised rows: `n_{window}` and every metric suffixed `_{window}`.

    `worse_than_naive_{window}` is true where the skill ratio is above 1 and a sign test
    says the model's error is larger than the naive forecast's more often than chance
    would make it (`skill_sign_p`, over the `n_decided` forecasts whose errors differ), and
    `coverage_off_{window}` where a binomial test says the closes inside the intervals are
    too few or too many for their levels (`coverage_p`, null without an interval); both at
    significance.TICKER_LEVEL. A ticker with no realised row is absent; the caller's join
    leaves its metrics null.
    """
    suffix = f"_{window}"
    counted = (
        trailing(rows, window)
        .group_by("ticker", maintain_order=True)
        .agg(
            pl.len().alias(f"n{suffix}"),
            *(expr.alias(f"{name}{suffix}") for name, expr in METRICS.items()),
            *(expr.alias(name if name != "n_decided" else f"n_decided{suffix}") for name, expr in _COUNTS.items()),
        )
    )
    return _flags(counted, suffix).select(
        "ticker",
        f"n{suffix}",
        *(f"{name}{suffix}" for name in ACCURACY),
        f"n_decided{suffix}",
        f"skill_sign_p{suffix}",
        f"worse_than_naive{suffix}",
        *(f"{name}{suffix}" for name in INTERVALS),
        f"coverage_p{suffix}",
        f"coverage_off{suffix}",
    )


def pooled_metrics(rows: pl.DataFrame, window: int) -> dict[str, float | None]:
    """The POOLED metrics over the last `window` realised rows of every ticker."""
    values = trailing(rows, window).select(*(expr.alias(name) for name, expr in POOLED.items())).row(0, named=True)
    return {name: None if value is None else float(value) for name, value in values.items()}


def rolling_skill(rows: pl.DataFrame, window: int, *, by_ticker: bool = False) -> pl.DataFrame:
    """Skill over the `window` sessions ending at each target session: (target_session, skill_ratio).

    Pooled over all tickers (MAPE over naive MAPE, as POOLED), or per ticker with a
    `ticker` column (MAE over naive MAE, as ACCURACY). Sessions before a full window
    are left out.
    """
    keys = ["ticker", "target_session"] if by_ticker else ["target_session"]
    model, naive = (_ERROR.abs(), _NAIVE_ERROR.abs()) if by_ticker else (_APE, _NAIVE_APE)
    sums = rows.group_by(keys).agg(model.sum().alias("model"), naive.sum().alias("naive")).sort(keys)
    rolled = [pl.col(c).rolling_sum(window) for c in ("model", "naive")]
    if by_ticker:
        rolled = [expr.over("ticker") for expr in rolled]
    return (
        sums.with_columns(*rolled)
        .select(*keys, _ratio(pl.col("model"), pl.col("naive")).alias("skill_ratio"))
        .filter(pl.col("skill_ratio").is_not_null())
    )
