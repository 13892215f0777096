"""Statistics over seeds: mean +/- std, differences and ratios of means with 95% intervals.

The framework effect of a metric is mean(backend A) - mean(backend B) over seeds. Its
interval is Welch's t interval (unequal variances, Welch-Satterthwaite degrees of freedom):

    d +/- t_{(1+c)/2, df} * sqrt(s_a^2 / n_a + s_b^2 / n_b)

With 2 seeds per backend df is between 1 and 2 (t = 12.7 to 4.3): the half-width is 4.3
seed standard deviations when both backends spread alike (df 2) and up to 9 times the larger
one when one backend dominates the spread (df 1). With 3 seeds (df 2 - 4, t = 4.3 - 2.8) it
is 2.3 - 2.5 seed standard deviations. So with 2 - 3 seeds only differences of several
seed-to-seed spreads are resolved. Controlled runs are also paired (same seed, same
initial weights and noise in both backends); `paired_interval` gives the paired t interval
over per-seed differences (df = n - 1), reported in the CSV.

Model-against-model effects (tables.model_effect_table) use the same Welch interval for the
difference of two models' means (different models share no weights, so seeds are not
paired), and `ratio_interval` for their ratio mean(a) / mean(b): the delta method on the
log scale (see its docstring), whose interval is positive, asymmetric around the ratio, and
turns into exactly the reciprocal interval when a and b swap.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


def _values(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds non-finite values: {x.tolist()}")
    return x


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation (ddof 1; NaN for one value), n).

    Example:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0, 3)
    """
    x = _values(values, "values")
    if x.size == 0:
        return math.nan, math.nan, 0
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan, int(x.size)


@dataclass(frozen=True)
class Interval:
    """A difference of means with its confidence interval.

    Attributes:
        diff: mean(a) - mean(b) (paired: mean of a_i - b_i, the same number).
        low, high: interval bounds (NaN when a group has fewer than 2 values).
        df: degrees of freedom of the t distribution used.
        confidence: e.g. 0.95.
        method: "welch" or "paired".
    """

    diff: float
    low: float
    high: float
    df: float
    confidence: float
    method: str

    @property
    def excludes_zero(self) -> bool:
        """True when the interval does not contain 0 (a difference at that confidence)."""
        return bool(self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Welch's t interval for mean(a) - mean(b).

    Args:
        a, b: per-seed values of the two backends (at least 2 each for an interval).
        confidence: two-sided confidence level.

    Returns:
        Interval (bounds NaN with fewer than 2 values per group; a zero-width interval when
        both groups have zero variance).

    Example:
        >>> iv = welch_interval([10.0, 11.0, 12.0], [8.0, 9.5, 9.0])
        >>> round(iv.diff, 3), iv.excludes_zero
        (2.167, True)
    """
    from scipy import stats

    x, y = _values(a, "a"), _values(b, "b")
    if x.size == 0 or y.size == 0:
        raise ValueError(f"welch_interval needs values in both groups, got {x.size} and {y.size}")
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return Interval(diff, math.nan, math.nan, math.nan, confidence, "welch")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Interval(diff, diff, diff, math.inf, confidence, "welch")
    df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return Interval(diff, diff - half, diff + half, float(df), confidence, "welch")


def paired_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Paired t interval for the mean of a_i - b_i (a and b in the same seed order).

    Example:
        >>> paired_interval([10.0, 11.0, 12.0], [8.0, 9.5, 9.0]).df
        2.0
    """
    from scipy import stats

    x, y = _values(a, "a"), _values(b, "b")
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"paired_interval needs two equally long, non-empty lists, got "
                         f"{x.size} and {y.size}")
    d = x - y
    diff = float(d.mean())
    if d.size < 2:
        return Interval(diff, math.nan, math.nan, math.nan, confidence, "paired")
    se = float(d.std(ddof=1)) / math.sqrt(d.size)
    if se == 0.0:
        return Interval(diff, diff, diff, float(d.size - 1), confidence, "paired")
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1)) * se
    return Interval(diff, diff - half, diff + half, float(d.size - 1), confidence, "paired")


@dataclass(frozen=True)
class RatioInterval:
    """A ratio of means with its confidence interval.

    Attributes:
        ratio: mean(a) / mean(b) (NaN when mean(b) is 0).
        low, high: interval bounds; NaN (with `note` saying why) when a group has fewer than
            2 values or the means are not both non-zero with the same sign.
        df: Welch-Satterthwaite degrees of freedom of the log-scale t interval.
        confidence: e.g. 0.95.
        method: "log-delta".
        note: empty, or why there is no interval.
    """

    ratio: float
    low: float
    high: float
    df: float
    confidence: float
    method: str
    note: str = ""

    @property
    def excludes_one(self) -> bool:
        """True when the interval does not contain 1 (a ratio different from 1)."""
        return bool(self.low > 1 or self.high < 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> RatioInterval:
    """Interval for mean(a) / mean(b), independent groups: the delta method on the log ratio.

    With r = m_a / m_b, the first-order (delta-method) variance of log r is

        se^2 = s_a^2 / (n_a m_a^2) + s_b^2 / (n_b m_b^2)

    (the squared coefficients of variation of the two means), and the interval is

        r * exp(-/+ t_{(1+c)/2, df} * se),

    with df by Welch-Satterthwaite on the two terms (as welch_interval does on s^2 / n), so
    that with many seeds it is the normal-theory interval and with few it widens the same way
    Welch's does. Reference: the delta method, Casella & Berger, Statistical Inference, 2nd
    ed. (2002), section 5.5.4; delta and Fieller intervals for ratios of means compared in
    Hirschberg & Lye, "A geometric comparison of the delta and Fieller confidence
    intervals", The American Statistician 64(3), 234-241 (2010). The log scale keeps the
    bounds positive and makes the interval of b / a exactly the reciprocal of this one; it
    needs both means non-zero and of the same sign (FID, seconds, negative ELBO are positive;
    KID, an unbiased estimate, can be negative near 0). It is first-order: accurate when the
    means' coefficients of variation are small (a few per cent to ~20 %, as for FID and
    epoch times over seeds); tests/compare/test_compare_units.py checks its coverage by
    Monte Carlo.

    Args:
        a, b: per-seed values of the two groups (at least 2 each for an interval).
        confidence: two-sided confidence level.

    Returns:
        RatioInterval; bounds NaN with a `note` when a group has fewer than 2 values, when a
        mean is 0 or when the means have opposite signs; a zero-width interval when neither
        group varies.

    Example:
        >>> iv = ratio_interval([30.0, 32.0, 31.0], [20.0, 21.0, 19.0])
        >>> round(iv.ratio, 3), iv.excludes_one
        (1.55, True)
    """
    from scipy import stats

    x, y = _values(a, "a"), _values(b, "b")
    if x.size == 0 or y.size == 0:
        raise ValueError(f"ratio_interval needs values in both groups, got {x.size} and {y.size}")
    ma, mb = float(x.mean()), float(y.mean())
    ratio = ma / mb if mb != 0 else math.nan

    def none(note: str) -> RatioInterval:
        return RatioInterval(ratio, math.nan, math.nan, math.nan, confidence, "log-delta", note)

    if x.size < 2 or y.size < 2:
        return none("fewer than 2 seeds in a group: no interval")
    if mb == 0 or ma == 0:
        return none("a mean is 0: no interval for the ratio")
    if (ma > 0) != (mb > 0):
        return none("the means have opposite signs: no interval for the ratio")
    va, vb = x.var(ddof=1) / (x.size * ma ** 2), y.var(ddof=1) / (y.size * mb ** 2)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return RatioInterval(ratio, ratio, ratio, math.inf, confidence, "log-delta")
    df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return RatioInterval(ratio, ratio * math.exp(-half), ratio * math.exp(half), float(df),
                         confidence, "log-delta")


def seed_spread(a: Sequence[float], b: Sequence[float]) -> float:
    """The seed-to-seed spread a framework effect is compared with: the larger of the two
    backends' standard deviations over seeds (NaN with fewer than 2 seeds)."""
    sa, sb = mean_std(a)[1], mean_std(b)[1]
    if math.isnan(sa) or math.isnan(sb):
        return math.nan
    return max(sa, sb)
