"""Forecast accuracy metrics on the realised rows of the `prediction_accuracy` view.

Every function takes a polars frame with at least `predicted_close`, `actual_close`
and `last_close` (one row per realised forecast, `actual_close` never null) and
returns None, not 0 or NaN, when there is nothing to measure. The errors are
recomputed from those three prices with the view's definitions, so a frame built
by hand in a test means the same as a frame read from the database.
"""

from __future__ import annotations

import polars as pl

_PREDICTED = pl.col("predicted_close")
_ACTUAL = pl.col("actual_close")
_LAST = pl.col("last_close")

_ERROR = _PREDICTED - _ACTUAL
_NAIVE_ERROR = _LAST - _ACTUAL


def _sign(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr > 0).then(1).when(expr < 0).then(-1).otherwise(0)


_MAE = _ERROR.abs().mean()
_NAIVE_MAE = _NAIVE_ERROR.abs().mean()

#: name -> aggregate expression; valid in `select` (one ticker) and in `group_by(...).agg` (many).
METRICS: dict[str, pl.Expr] = {
    "mae": _MAE,
    "rmse": _ERROR.pow(2).mean().sqrt(),
    "mape": (100.0 * _ERROR.abs() / _ACTUAL).mean(),
    # As in the view: a hit when the forecast moved (up, down or flat) the way the close did.
    "directional_accuracy": (_sign(_PREDICTED - _LAST) == _sign(_ACTUAL - _LAST)).cast(pl.Float64).mean(),
    # MAE of the model over MAE of "tomorrow closes where today did"; undefined when the naive error is 0.
    "skill_ratio": pl.when(_NAIVE_MAE > 0).then(_MAE / _NAIVE_MAE),
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
    return _scalar(rows, "mape")


def directional_accuracy(rows: pl.DataFrame) -> float | None:
    """Share (0..1) of forecasts that called the direction of the move from the last close."""
    return _scalar(rows, "directional_accuracy")


def skill_ratio(rows: pl.DataFrame) -> float | None:
    """MAE(model) / MAE(naive last-close forecast): above 1 the model is worse than naive."""
    return _scalar(rows, "skill_ratio")


def trailing(rows: pl.DataFrame, window: int) -> pl.DataFrame:
    """The last `window` realised rows of each ticker, by target session."""
    return rows.sort("ticker", "target_session").group_by("ticker", maintain_order=True).tail(window)


def window_metrics(rows: pl.DataFrame, window: int) -> pl.DataFrame:
    """One row per ticker with realised rows: `n_{window}` and every metric suffixed `_{window}`.

    `worse_than_naive_{window}` is true where the skill ratio is above 1. A ticker
    with no realised row is absent; the caller's join leaves its metrics null.
    """
    return (
        trailing(rows, window)
        .group_by("ticker", maintain_order=True)
        .agg(pl.len().alias(f"n_{window}"), *(expr.alias(f"{name}_{window}") for name, expr in METRICS.items()))
        .with_columns((pl.col(f"skill_ratio_{window}") > 1).alias(f"worse_than_naive_{window}"))
    )
