"""Statistics for experiment reports: rates, lift, fixed-horizon and always-valid tests.

Every function takes numpy-broadcastable counts, so the same code serves one report and
thousands of simulated experiments. ``_t`` is the treatment group, ``_c`` the control.
Degenerate input (no decisions, no variance) gives NaN, never a warning. Units are assumed
independent (one decision = one Bernoulli trial); when profiles see many decisions and differ
a lot in their rates, intervals are somewhat too narrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]
Counts = npt.ArrayLike


@dataclass(frozen=True)
class IntervalEstimate:
    """A point estimate with a two-sided confidence interval (arrays, or 0-d arrays)."""

    value: FloatArray
    low: FloatArray
    high: FloatArray

    def contains(self, truth: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        return (self.low <= np.asarray(truth)) & (np.asarray(truth) <= self.high)


def _f(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _z(alpha: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2))


def rate(conversions: Counts, decisions: Counts, alpha: float = 0.05) -> IntervalEstimate:
    """Conversion rate with a Wilson score interval (as statsmodels ``proportion_confint``
    'wilson', written out here because importing statsmodels costs the CLI a second)."""
    x, n, z = _f(conversions), _f(decisions), _z(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = (x + z**2 / 2) / (n + z**2)
        half = z / (n + z**2) * np.sqrt(x * (n - x) / n + z**2 / 4)
        # Exact ends where rounding would leave 1e-17 off: no conversions, or all of them.
        low = np.where(x == 0, 0.0, np.clip(center - half, 0, 1))
        high = np.where(x == n, 1.0, np.clip(center + half, 0, 1))
        return IntervalEstimate(x / n, low, high)


def difference_of_means(
    mean_t: Counts,
    var_t: Counts,
    n_t: Counts,
    mean_c: Counts,
    var_c: Counts,
    n_c: Counts,
    alpha: float = 0.05,
) -> IntervalEstimate:
    """Absolute difference ``mean_t - mean_c`` with a normal (Wald, unpooled) interval."""
    diff = _f(mean_t) - _f(mean_c)
    se = np.sqrt(_f(var_t) / _f(n_t) + _f(var_c) / _f(n_c))
    return IntervalEstimate(diff, diff - _z(alpha) * se, diff + _z(alpha) * se)


def relative_lift_of_means(
    mean_t: Counts,
    var_t: Counts,
    n_t: Counts,
    mean_c: Counts,
    var_c: Counts,
    n_c: Counts,
    alpha: float = 0.05,
) -> IntervalEstimate:
    """Relative lift ``mean_t / mean_c - 1`` with a delta-method interval.

    Var(m_t / m_c) ~= r^2 (Var(m_t) / m_t^2 + Var(m_c) / m_c^2) with r = m_t / m_c.
    """
    mt, mc = _f(mean_t), _f(mean_c)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = mt / mc
        se = np.abs(ratio) * np.sqrt(_f(var_t) / _f(n_t) / mt**2 + _f(var_c) / _f(n_c) / mc**2)
    return IntervalEstimate(ratio - 1, ratio - 1 - _z(alpha) * se, ratio - 1 + _z(alpha) * se)


def difference_of_proportions(
    x_t: Counts, n_t: Counts, x_c: Counts, n_c: Counts, alpha: float = 0.05
) -> IntervalEstimate:
    """``p_t - p_c`` with the Wald interval (statsmodels ``confint_proportions_2indep`` 'wald')."""
    p_t, p_c = _f(x_t) / _f(n_t), _f(x_c) / _f(n_c)
    return difference_of_means(p_t, p_t * (1 - p_t), n_t, p_c, p_c * (1 - p_c), n_c, alpha)


def relative_lift(
    x_t: Counts, n_t: Counts, x_c: Counts, n_c: Counts, alpha: float = 0.05
) -> IntervalEstimate:
    """``p_t / p_c - 1`` with a delta-method interval."""
    p_t, p_c = _f(x_t) / _f(n_t), _f(x_c) / _f(n_c)
    return relative_lift_of_means(p_t, p_t * (1 - p_t), n_t, p_c, p_c * (1 - p_c), n_c, alpha)


def two_proportion_z_test(
    x_t: Counts, n_t: Counts, x_c: Counts, n_c: Counts
) -> tuple[FloatArray, FloatArray]:
    """Pooled two-sided z test of ``p_t == p_c``: (z, p-value), as statsmodels ``proportions_ztest``."""
    xt, nt, xc, nc = _f(x_t), _f(n_t), _f(x_c), _f(n_c)
    pooled = (xt + xc) / (nt + nc)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (xt / nt - xc / nc) / np.sqrt(pooled * (1 - pooled) * (1 / nt + 1 / nc))
    return z, _f(2 * sps.norm.sf(np.abs(z)))


@dataclass(frozen=True)
class WelchResult:
    difference: IntervalEstimate
    t: FloatArray
    df: FloatArray
    p_value: FloatArray


def welch_t_test(
    mean_t: Counts, sd_t: Counts, n_t: Counts, mean_c: Counts, sd_c: Counts, n_c: Counts, alpha: float = 0.05
) -> WelchResult:
    """Welch's unequal-variance t test from summary statistics (scipy ``ttest_ind_from_stats``),
    with the Welch-Satterthwaite interval for ``mean_t - mean_c``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        vt, vc = _f(sd_t) ** 2 / _f(n_t), _f(sd_c) ** 2 / _f(n_c)
        df = (vt + vc) ** 2 / (vt**2 / (_f(n_t) - 1) + vc**2 / (_f(n_c) - 1))
        result = sps.ttest_ind_from_stats(
            _f(mean_t),
            _f(sd_t),
            np.asarray(n_t, np.int64),
            _f(mean_c),
            _f(sd_c),
            np.asarray(n_c, np.int64),
            equal_var=False,
        )
        diff = _f(mean_t) - _f(mean_c)
        half = sps.t.ppf(1 - alpha / 2, df) * np.sqrt(vt + vc)
    return WelchResult(
        IntervalEstimate(diff, diff - half, diff + half), _f(result.statistic), _f(df), _f(result.pvalue)
    )


def probability_to_beat(
    x_t: int, n_t: int, x_c: int, n_c: int, prior: tuple[float, float] = (1.0, 1.0)
) -> float:
    """P(p_t > p_c) under independent Beta(prior + successes, prior + failures) posteriors.

    Exact: with A = posterior of control, B of treatment and integer ``a_B`` (Evan Miller's
    closed form), P(p_B > p_A) = sum_{i < a_B} B(a_A + i, b_A + b_B) /
    ((b_B + i) B(1 + i, b_B) B(a_A, b_A)), summed in log space. The sum runs over the
    smaller of the two ``a`` (using P(p_B > p_A) = 1 - P(p_A > p_B)).
    """
    a_t, b_t = prior[0] + x_t, prior[1] + n_t - x_t
    a_c, b_c = prior[0] + x_c, prior[1] + n_c - x_c
    if not (float(a_t).is_integer() and float(a_c).is_integer()):
        raise ValueError("the exact sum needs an integer prior alpha")
    if a_t <= a_c:
        return _beats(a_t, b_t, a_c, b_c)
    return 1.0 - _beats(a_c, b_c, a_t, b_t)


def _beats(a_b: float, b_b: float, a_a: float, b_a: float) -> float:
    i = np.arange(int(a_b), dtype=np.float64)
    log_terms = (
        special.betaln(a_a + i, b_a + b_b)
        - np.log(b_b + i)
        - special.betaln(1 + i, b_b)
        - special.betaln(a_a, b_a)
    )
    return float(np.clip(np.exp(special.logsumexp(log_terms)), 0.0, 1.0))


def sample_ratio_mismatch(observed: Sequence[int], shares: Sequence[float]) -> float:
    """p-value of a chi-square goodness-of-fit test of observed group sizes against shares."""
    counts = _f(observed)
    expected = _f(shares) / np.sum(shares) * counts.sum()
    return float(sps.chisquare(counts, expected).pvalue)
