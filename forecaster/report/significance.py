"""Whether a deviation is more than chance: the report flags a ticker, or colours a headline, only then.

Per ticker, over n realised forecasts: coverage with an exact two-sided binomial test of
the closes inside the interval against its level; skill with a sign test (an exact
binomial test at 1/2) of the sessions the model's error was larger than the naive
forecast's, ties dropped. Both are exact, so `chance_rate` says how often the test flags
a ticker that is fine, and the report can say how many flags chance alone would give.

Pooled over tickers, the forecasts of one session move together (one market), so they
are not independent draws: the headline tests aggregate each session first and test
the mean of the per-session values against Student's t (a Diebold-Mariano statistic
without autocorrelation correction: one-step forecasts).

Written here, not taken from scipy: these tails are all the report needs of it,
and scipy would add a large dependency to the image for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: A ticker is flagged when its test gives a p-value at or below this (each of the two coverage levels
#: at half of it, so a ticker's coverage flag keeps this rate too).
TICKER_LEVEL = 0.01
#: A headline number is coloured when its test gives a p-value at or below this.
HEADLINE_LEVEL = 0.01


@lru_cache(maxsize=4096)
def _binomial_p_values(n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(pmf, two-sided p-value) of every count 0..n under Binomial(n, rate).

    The p-value of k sums the probabilities of the counts no likelier than k (as
    scipy.stats.binomtest does), with a relative tolerance so that ties in floating
    point count as ties."""
    k = np.arange(n + 1)
    log_pmf = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
        + k * math.log(rate)
        + (n - k) * math.log1p(-rate)
    )
    pmf = np.exp(log_pmf)
    order = np.sort(pmf)
    cumulative = np.cumsum(order)
    # For each k: the total of the probabilities <= pmf[k] (times 1 + 1e-7 for ties).
    p_values = np.minimum(cumulative[np.searchsorted(order, pmf * (1 + 1e-7), side="right") - 1], 1.0)
    return pmf, p_values


def binomial_p_value(k: int, n: int, rate: float) -> float:
    """The exact two-sided p-value of k successes in n trials of probability `rate`."""
    if n == 0:
        return 1.0
    return float(_binomial_p_values(n, rate)[1][k])


def chance_rate(n: int, rate: float, level: float, *, side: int = 0) -> float:
    """How often the two-sided binomial test at `level` rejects when the rate is right: the
    probability of a count with a p-value <= level (side +1 or -1: only counts above or
    below n * rate, the rejections that flag one way)."""
    if n == 0:
        return 0.0
    pmf, p_values = _binomial_p_values(n, rate)
    rejected = p_values <= level
    counts = np.arange(n + 1)
    if side > 0:
        rejected &= counts > n * rate
    elif side < 0:
        rejected &= counts < n * rate
    return float(pmf[rejected].sum())


def mean_test_p_value(values: Sequence[float], expected: float, *, least_variance: float = 0.0) -> float | None:
    """Two-sided p-value that the mean of `values` (one per session) is `expected`: the statistic
    (mean - expected) / (sd / sqrt(T)) against Student's t with T - 1 degrees of freedom.

    The variance used is at least `least_variance`: what independent tickers alone would
    give (correlation across tickers only adds to it), so that a sample of sessions that
    happens to vary little does not make a small deviation look certain. None with fewer
    than 3 values."""
    count = len(values)
    if count < 3:
        return None
    array = np.asarray(values, dtype=float)
    deviation = float(array.mean()) - expected
    variance = max(float(array.var(ddof=1)), least_variance)
    tolerance = 1e-12 * max(1.0, abs(expected))
    if variance <= tolerance**2:  # constant, up to rounding
        return 1.0 if abs(deviation) <= tolerance else 0.0
    statistic = deviation / math.sqrt(variance / count)
    degrees = count - 1
    return _regularized_beta(degrees / (degrees + statistic**2), degrees / 2, 0.5)


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by its continued fraction (Numerical Recipes' betacf): Student's t's two-sided tail."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only on this side
        return 1.0 - _regularized_beta(1.0 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-14:
            break
    return front * result


def poisson_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected): how surprising this many flags is when chance
    alone expects `expected`."""
    if observed <= 0:
        return 1.0
    if expected <= 0.0:
        return 0.0
    term = math.exp(-expected)
    below = term
    for i in range(1, observed):
        term *= expected / i
        below += term
    return max(0.0, 1.0 - below)
