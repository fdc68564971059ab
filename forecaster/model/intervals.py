"""80 % and 95 % prediction intervals of the next close: conformal on each ticker's own
out-of-sample errors, scaled by the volatility of its returns.

The method, per ticker:

* **Volatility.** σ_t is the EWMA volatility of daily log returns through the close the
  forecast is made from (`forecaster.model.volatility`, λ = 0.94), computed from the
  window of closes the cycle already loads (the preset's window + lags, 257 sessions).
* **Scores.** When the close C of a forecast's target session is known, the forecast
  (predicted close P, made with σ from the last close L) gets the standardised absolute error

      s = |log(C / L) − log(P / L)| / σ    (= |log(C / P)| / σ)

  i.e. its error in units of the volatility on the day it was made. It is computed from
  moves, C and L read from the same closes: a dividend or split that restates the history
  between the forecast and its target changes no score. Dividing by σ makes
  the scores of calm and turbulent days comparable, so the quantile of yesterday's
  scores applies today whatever the market does: the interval widens as soon as σ does.
* **Quantile rule.** With the last n ≤ `WINDOW` (250) scores, the level-L bound is the
  k-th smallest score, k = ⌈(n + 1) · L⌉: the split-conformal rule, whose finite-sample
  correction (n + 1 rather than n) makes the coverage at least L when the scores are
  exchangeable. For n = 250: the 201st score for 80 %, the 239th for 95 %.
* **Interval.** [P · exp(−q_L · σ), P · exp(+q_L · σ)], symmetric in log price around the
  forecast, with σ of the forecast's own day. Since q_95 ≥ q_80 ≥ 0, always
  lower_95 ≤ lower_80 ≤ predicted ≤ upper_80 ≤ upper_95, and every bound is positive.
* **Fallback.** A ticker with fewer than `MIN_SCORES` (20) scores of its own (a new ticker,
  or one whose state was lost) takes the scores of the naive forecast over its window of
  closes instead: s_t = |log(close_t / close_(t-1))| / σ_(t-1) for each return of the
  window (about 250), with the same quantile rule; `interval_method` says "returns_window".
  The model's forecast moves are a small fraction of σ (a few percent of it on real
  prices), so the naive forecast's in-sample errors stand in for the model's
  out-of-sample ones, without needing anything from the fit. A window with fewer than
  `MIN_SCORES` returns as well gives no interval (NaN bounds, method None).

Once per session and ticker, in one step (`interval_step`, fed from the ClosesMatrix the
forecast step works on): the previous forecast's score joins the state (`advance_state`), σ
and the fallback scores come from the closes window, the bounds are computed (`intervals`),
and the new forecast becomes the state's pending one (`with_pending`). No pass over history:
the state carries what is needed from earlier sessions, at most `WINDOW` scores and one
pending forecast, and is JSON (`state_to_json`, `state_from_json`). Every function works on
many tickers at once, each ticker touching only its own row, and is deterministic: scores
are rounded to `SCORE_DECIMALS` when they enter the state, so a state that went through JSON
continues exactly as one kept in memory. `replay` runs the same step over stored forecasts
(benchmarks and tests).

W = 250, λ = 0.94 and the symmetric rule were chosen on the tuning spans of
benchmarks/accuracy.py (README, "Prediction intervals").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from forecaster.calendar import NYSE, trading_calendar
from forecaster.model.closes import ClosesMatrix
from forecaster.model.volatility import EWMA_DECAY, ewma_volatility

NYSE_CALENDAR = trading_calendar(NYSE)

LEVELS: tuple[float, float] = (0.80, 0.95)
WINDOW = 250  # scores kept per ticker: the last W realised forecasts
MIN_SCORES = 20  # fewer own scores than this: the fallback
SCORE_DECIMALS = 4  # scores are stored rounded (units of σ), so JSON round trips are exact
METHOD_CONFORMAL = "conformal"
METHOD_FALLBACK = "returns_window"
STATE_VERSION = 2  # 1: the pending forecast as a close (read back without it: one score is lost)


@dataclass(frozen=True)
class IntervalState:
    """What the interval method carries from one session to the next, for many tickers.

    scores are right-aligned: a ticker's newest score is in the last column and the
    columns before its oldest are NaN. The pending forecast is the last one made, whose
    target close is not yet known to the state (NaN and None when there is none). It is kept
    as a move, log(predicted / last close), never as a price: a dividend or a split that
    restates the history between the forecast and its target changes no move (the closes the
    move is scored against come from one matrix, in one price basis).
    """

    scores: np.ndarray  # (tickers, WINDOW): standardised absolute errors, oldest first, NaN where none
    pending_return: np.ndarray  # (tickers,): log(predicted close / last close) of the pending forecast
    pending_sigma: np.ndarray  # (tickers,): σ (log-return units) it was made with
    pending_target: list[date | None]  # (tickers,): its target session
    pending_as_of: list[date | None]  # (tickers,): the session it was made from (its last close)

    @classmethod
    def empty(cls, tickers: int, window: int = WINDOW) -> IntervalState:
        return cls(
            scores=np.full((tickers, window), np.nan),
            pending_return=np.full(tickers, np.nan),
            pending_sigma=np.full(tickers, np.nan),
            pending_target=[None] * tickers,
            pending_as_of=[None] * tickers,
        )

    @property
    def counts(self) -> np.ndarray:
        """(tickers,): how many scores each ticker has."""
        return np.isfinite(self.scores).sum(axis=1)


@dataclass(frozen=True)
class PredictionInterval:
    """80 % and 95 % bounds of one forecast close, and the method that made them."""

    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    method: str


@dataclass(frozen=True)
class Bounds:
    """The intervals of many tickers' forecasts; NaN bounds (and method None) for no interval."""

    lower_80: np.ndarray  # (tickers,)
    upper_80: np.ndarray  # (tickers,)
    lower_95: np.ndarray  # (tickers,)
    upper_95: np.ndarray  # (tickers,)
    method: list[str | None]  # (tickers,): METHOD_CONFORMAL, METHOD_FALLBACK or None

    def interval(self, k: int) -> PredictionInterval | None:
        """Ticker k's interval, None when it has none."""
        method = self.method[k]
        if method is None:
            return None
        return PredictionInterval(
            float(self.lower_80[k]), float(self.upper_80[k]), float(self.lower_95[k]), float(self.upper_95[k]), method
        )


def volatility_scale(closes: np.ndarray, decay: float = EWMA_DECAY) -> np.ndarray:
    """σ through the latest close: (tickers, n) closes, oldest first (0 or NaN padding at the
    front) -> (tickers,), in log-return units. The same σ the default preset scales by."""
    return ewma_volatility(closes, decay)[:, -1]


def fallback_scores(closes: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
    """The naive forecast's standardised errors over a window: (tickers, n) closes, oldest
    first -> (tickers, n - 1) scores |r_t| / σ_(t-1), NaN where a return touches padding.
    `sigma` is ewma_volatility(closes) when the caller has it already."""
    sigma = ewma_volatility(closes) if sigma is None else sigma  # (tickers, n)
    valid = np.isfinite(closes) & (closes > 0)
    safe = np.where(valid, closes, 1.0)
    returns = np.abs(np.log(safe[:, 1:] / safe[:, :-1]))  # (tickers, n - 1)
    return np.where(valid[:, 1:] & valid[:, :-1], returns / sigma[:, :-1], np.nan)


def conformal_quantile(scores: np.ndarray, level: float) -> np.ndarray:
    """Per row, the k-th smallest finite score with k = ⌈(n + 1) · level⌉, n the row's count of
    finite scores: (tickers, m) -> (tickers,). NaN when k > n (too few scores for the level)."""
    n = np.isfinite(scores).sum(axis=1)  # (tickers,)
    k = _order_statistics(scores.shape[1], level)[n]  # (tickers,)
    ordered = np.sort(np.where(np.isfinite(scores), scores, np.inf), axis=1)  # NaN last, as +inf
    rows = np.arange(len(scores))
    picked = (
        ordered[rows, np.clip(k - 1, 0, max(scores.shape[1] - 1, 0))]
        if scores.shape[1]
        else np.full(len(scores), np.inf)
    )
    return np.where((k >= 1) & (k <= n), picked, np.nan)


@cache
def _order_statistics(width: int, level: float) -> np.ndarray:
    """(width + 1,): k = ⌈(n + 1) · level⌉ for n = 0 .. width scores (rounded first, so that
    float error in the product, as in 200.00000000000003, does not move k)."""
    return np.array([math.ceil(round((n + 1) * level, 9)) for n in range(width + 1)], dtype=np.int64)


def realised_returns(state: IntervalState, closes: ClosesMatrix) -> np.ndarray:
    """(tickers,): log(target close / last close) of each ticker's pending forecast, from the
    closes of one matrix (one price basis); NaN where either close is not in it."""
    target = closes.close_on(state.pending_target)
    made_from = closes.close_on(state.pending_as_of)
    known = np.isfinite(target) & (target > 0) & np.isfinite(made_from) & (made_from > 0)
    return np.where(known, np.log(np.where(known, target, 1.0) / np.where(known, made_from, 1.0)), np.nan)


def advance_state(state: IntervalState, realised_return: np.ndarray) -> IntervalState:
    """Scores the pending forecast of each ticker whose target close is known.

    realised_return (tickers,): log(target close / last close) of each ticker's pending
    forecast (`realised_returns`), NaN when it is not known (no pending forecast, or no
    close stored for that session). The score is |realised − forecast move| / σ. A scored
    ticker's score joins its window (the oldest drops out beyond WINDOW) and it has no
    pending forecast left; an unscored ticker's pending forecast is dropped as well, so a
    missed session costs one score and never pairs a forecast with the wrong close.
    """
    known = np.isfinite(realised_return) & np.isfinite(state.pending_return)
    error = np.where(known, realised_return - state.pending_return, 0.0)
    safe_sigma = np.where(known, state.pending_sigma, 1.0)
    score = np.round(np.abs(error) / safe_sigma, SCORE_DECIMALS)  # (tickers,)
    shifted = np.concatenate([state.scores[:, 1:], score[:, None]], axis=1)  # (tickers, WINDOW)
    return replace(
        IntervalState.empty(len(state.pending_return), state.scores.shape[1]),
        scores=np.where(known[:, None], shifted, state.scores),
    )


def intervals(state: IntervalState, predicted_close: np.ndarray, sigma: np.ndarray, fallback: np.ndarray) -> Bounds:
    """The bounds of each ticker's forecast.

    predicted_close (tickers,), sigma (tickers,) from `volatility_scale` of the closes the
    forecast was made from, fallback (tickers, m) from `fallback_scores` of those closes.
    """
    own = state.counts >= MIN_SCORES  # (tickers,)
    enough_fallback = np.isfinite(fallback).sum(axis=1) >= MIN_SCORES  # (tickers,)
    method_ok = (own | enough_fallback) & np.isfinite(predicted_close) & (predicted_close > 0) & np.isfinite(sigma)
    bounds = {}
    for level in LEVELS:
        q = np.where(own, conformal_quantile(state.scores, level), conformal_quantile(fallback, level))  # (tickers,)
        method_ok &= np.isfinite(q)
        bounds[level] = q * sigma  # (tickers,): half-width in log price
    out = {}
    for level in LEVELS:
        half = np.where(method_ok, bounds[level], np.nan)
        out[level] = (predicted_close * np.exp(-half), predicted_close * np.exp(half))
    method = [
        (METHOD_CONFORMAL if o else METHOD_FALLBACK) if ok else None for o, ok in zip(own, method_ok, strict=True)
    ]
    return Bounds(
        lower_80=out[0.80][0],
        upper_80=out[0.80][1],
        lower_95=out[0.95][0],
        upper_95=out[0.95][1],
        method=method,
    )


def _per_ticker(value: date | Sequence[date | None] | None, tickers: int) -> list[date | None]:
    values: list[date | None] = [value] * tickers if value is None or isinstance(value, date) else list(value)
    assert len(values) == tickers, f"expected {tickers} sessions, got {len(values)}"
    return values


def with_pending(
    state: IntervalState,
    predicted_return: np.ndarray,
    sigma: np.ndarray,
    target_session: date | Sequence[date | None],
    as_of: date | Sequence[date | None] | None,
) -> IntervalState:
    """The state after making forecasts that move log(predicted / last close) = `predicted_return`,
    from `as_of` for `target_session` (one date for all, or one per ticker)."""
    tickers = len(predicted_return)
    return IntervalState(
        scores=state.scores,
        pending_return=np.asarray(predicted_return, dtype=np.float64).copy(),
        pending_sigma=np.asarray(sigma, dtype=np.float64).copy(),
        pending_target=_per_ticker(target_session, tickers),
        pending_as_of=_per_ticker(as_of, tickers),
    )


def interval_step(
    state: IntervalState,
    realised_return: np.ndarray,
    closes: np.ndarray,
    predicted_close: np.ndarray,
    target_session: date | Sequence[date | None],
    as_of: date | Sequence[date | None] | None = None,
    *,
    sigma: np.ndarray | None = None,
) -> tuple[Bounds, IntervalState]:
    """One session for many tickers: score yesterday's forecasts, bound today's, remember them.

    state: each ticker's state as of its previous forecast; realised_return (tickers,): the
    move its pending forecast was for (`realised_returns`, NaN when unknown); closes (tickers, n):
    the closes the forecast is made from, oldest first, the last one that of `as_of`, the session
    forecast from (0 or NaN padding at the front); predicted_close (tickers,); `sigma`
    (tickers, n) is ewma_volatility(closes) when the caller computed it already (the forecast
    step has). Returns the bounds and the state to store with this session's model state.
    """
    assert closes.shape[0] == len(predicted_close) == len(state.pending_return), (
        f"tickers disagree: closes {closes.shape[0]}, forecasts {len(predicted_close)}, "
        f"state {len(state.pending_return)}"
    )
    advanced = advance_state(state, realised_return)
    sigma_series = ewma_volatility(closes) if sigma is None else sigma  # (tickers, n)
    latest_sigma = sigma_series[:, -1]  # (tickers,)
    bounds = intervals(advanced, predicted_close, latest_sigma, fallback_scores(closes, sigma_series))
    last = closes[:, -1]
    known = np.isfinite(predicted_close) & (predicted_close > 0) & np.isfinite(last) & (last > 0)
    move = np.where(known, np.log(np.where(known, predicted_close, 1.0) / np.where(known, last, 1.0)), np.nan)
    return bounds, with_pending(advanced, move, latest_sigma, target_session, as_of)


def state_to_json(state: IntervalState) -> list[dict[str, Any]]:
    """One JSON-serialisable dict per ticker: its scores (oldest first), and the pending forecast or null."""
    out = []
    for k in range(len(state.pending_return)):
        row = state.scores[k]
        pending = None
        target, as_of = state.pending_target[k], state.pending_as_of[k]
        if target is not None and as_of is not None and np.isfinite(state.pending_return[k]):
            pending = {
                "target_session": target.isoformat(),
                "as_of": as_of.isoformat(),
                "predicted_return": float(state.pending_return[k]),
                "sigma": float(state.pending_sigma[k]),
            }
        out.append({"version": STATE_VERSION, "scores": row[np.isfinite(row)].tolist(), "pending": pending})
    return out


def state_from_json(rows: Sequence[dict[str, Any] | None], window: int = WINDOW) -> IntervalState:
    """The state of many tickers from their dicts; None, or a dict that does not read as a state,
    gives that ticker an empty state (its intervals fall back until it has MIN_SCORES again). A
    version-1 state keeps its scores; its pending forecast, a price, is dropped."""
    state = IntervalState.empty(len(rows), window)
    for k, row in enumerate(rows):
        try:
            if row is None or row.get("version") not in (1, STATE_VERSION):
                continue
            scores = np.asarray(row["scores"], dtype=np.float64)[-window:]
            if scores.ndim != 1 or not np.all(np.isfinite(scores) & (scores >= 0)):
                raise ValueError("scores out of range")
            pending = row.get("pending") if row["version"] == STATE_VERSION else None
            if pending is not None:
                move, sigma = float(pending["predicted_return"]), float(pending["sigma"])
                target, as_of = date.fromisoformat(pending["target_session"]), date.fromisoformat(pending["as_of"])
                if not (math.isfinite(move) and math.isfinite(sigma) and sigma > 0):
                    raise ValueError("pending forecast out of range")
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
        if len(scores):
            state.scores[k, -len(scores) :] = scores
        if pending is not None:
            state.pending_return[k], state.pending_sigma[k] = move, sigma
            state.pending_target[k], state.pending_as_of[k] = target, as_of
    return state


def replay(predictions: pl.DataFrame, prices: pl.DataFrame, *, closes_per_forecast: int) -> pl.DataFrame:
    """The intervals the cycle would have given stored forecasts, session by session, with
    `interval_step`: predictions (ticker, as_of, target_session, predicted_close), prices
    (ticker, session_date, close). `closes_per_forecast` is the preset's window + lags: the
    cycle forecasts from the closes of that many NYSE sessions through as_of (fewer where some
    are missing), and so does the replay.

    Returns the predictions with lower_80, upper_80, lower_95, upper_95, interval_method
    (sorted by as_of, ticker). A ticker's state starts empty at its first forecast here and
    carries over to its next forecast, as in the cycle.
    """
    predictions = predictions.sort("as_of", "ticker")
    prices = prices.select("ticker", "session_date", "close").sort("ticker", "session_date")
    tickers = sorted(predictions["ticker"].unique().to_list())
    index = {t: k for k, t in enumerate(tickers)}
    state = IntervalState.empty(len(tickers))
    out = []
    for (as_of,), day in predictions.group_by("as_of", maintain_order=True):
        rows = [index[t] for t in day["ticker"]]
        day_state = _take(state, rows)
        first = NYSE_CALENDAR.sessions_back(as_of, closes_per_forecast)  # as the cycle loads them
        seen = prices.filter(pl.col("session_date").is_between(first, as_of))
        matrix = ClosesMatrix.from_frame(seen, day["ticker"].to_list(), closes_per_forecast)
        bounds, day_state = interval_step(
            day_state,
            realised_returns(day_state, matrix),
            matrix.closes,
            day["predicted_close"].to_numpy(),
            day["target_session"].to_list(),
            as_of,
        )
        state = _put(state, rows, day_state)
        out.append(
            day.with_columns(
                lower_80=pl.Series(bounds.lower_80, nan_to_null=True),
                upper_80=pl.Series(bounds.upper_80, nan_to_null=True),
                lower_95=pl.Series(bounds.lower_95, nan_to_null=True),
                upper_95=pl.Series(bounds.upper_95, nan_to_null=True),
                interval_method=pl.Series(bounds.method, dtype=pl.String),
            )
        )
    return (
        pl.concat(out)
        if out
        else predictions.with_columns(
            *(pl.lit(None, dtype=pl.Float64).alias(c) for c in ("lower_80", "upper_80", "lower_95", "upper_95")),
            pl.lit(None, dtype=pl.String).alias("interval_method"),
        )
    )


def _take(state: IntervalState, rows: list[int]) -> IntervalState:
    return IntervalState(
        scores=state.scores[rows],
        pending_return=state.pending_return[rows],
        pending_sigma=state.pending_sigma[rows],
        pending_target=[state.pending_target[k] for k in rows],
        pending_as_of=[state.pending_as_of[k] for k in rows],
    )


def _put(state: IntervalState, rows: list[int], part: IntervalState) -> IntervalState:
    scores, move, sigma = state.scores.copy(), state.pending_return.copy(), state.pending_sigma.copy()
    target, as_of = list(state.pending_target), list(state.pending_as_of)
    scores[rows], move[rows], sigma[rows] = part.scores, part.pending_return, part.pending_sigma
    for j, k in enumerate(rows):
        target[k], as_of[k] = part.pending_target[j], part.pending_as_of[j]
    return IntervalState(scores, move, sigma, target, as_of)
