"""Statistics for experiment reports: rates, lift, fixed-horizon tests, at the unit of assignment.

Every function takes numpy-broadcastable inputs, so the same code serves one report and
thousands of simulated experiments. ``_t`` is the treatment group, ``_c`` the control.
Degenerate input (no decisions, no variance) gives NaN, never a warning.

**The unit of inference is the profile.** Groups are assigned by profile, and the decisions
of one profile are not independent (a profile that likes an offer converts on it again). A
group is reduced to sums over its profiles (``ProfileSums``: profile ``i`` made ``n_i``
decisions with metric total ``y_i``), and a per-decision mean ``sum y_i / sum n_i`` has
variance ``sigma^2 deff / sum n_i``: the per-decision variance times the design effect of
unequal clusters (Kish)

    deff = 1 + rho (sum n_i^2 / sum n_i - 1)

with ``rho`` the correlation between two decisions of one profile. ``design_effects``
estimates ``rho`` by moments from the residuals ``y_i - mean n_i`` of all groups together:
one value pooled over the groups, so a 5% holdout with a handful of conversions borrows it
from the treatment instead of estimating it (or a variance) from almost nothing. Each group
keeps its own ``sum n_i^2``, so a very active profile in a small group widens that group's
interval, and never gets a smaller design effect than its own sandwich estimate. With one
decision per profile the design effect is 1 and every formula is the textbook one; the tests
check them against statsmodels and scipy.

The proportion functions take the design effects as ``deff_t`` and ``deff_c``: they work on
the effective sample size ``n / deff``. The relative lift of two rates uses the log (Katz)
interval, which stays inside (-100%, +inf). With 0 conversions in either group it adds 0.5
to the (effective) conversions and decisions of both groups, statsmodels' 'log-adjusted',
so the lift and its interval are defined; the report says so when it happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
from scipy import integrate, special
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


def _ratio(num: npt.ArrayLike, den: npt.ArrayLike) -> FloatArray:
    """``num / den``, 0 where ``den`` is 0 (an empty group has no mean to subtract)."""
    n, d = _f(num), _f(den)
    return np.divide(n, d, out=np.zeros(np.broadcast(n, d).shape), where=d != 0)


@dataclass(frozen=True)
class ProfileSums:
    """One group reduced to sums over its profiles, for a per-decision metric (conversion as
    0/1, or value). Arrays broadcast; the report keeps one entry per look on the last axis."""

    decisions: FloatArray  # sum n_i
    total: FloatArray  # sum y_i
    total_squares: FloatArray  # sum y_i^2
    cross: FloatArray  # sum n_i y_i
    decision_squares: FloatArray  # sum n_i^2
    metric_squares: FloatArray  # sum over the decisions of the metric squared (= total for 0/1)

    @classmethod
    def of_decisions(
        cls, total: Counts, decisions: Counts, metric_squares: Counts | None = None
    ) -> ProfileSums:
        """Independent decisions: every decision its own profile. For a 0/1 metric
        ``metric_squares`` is ``total``, the default."""
        y, n = _f(total), _f(decisions)
        squares = y if metric_squares is None else _f(metric_squares)
        return cls(n, y, squares, y, n, squares)

    @classmethod
    def of_profiles(
        cls, decisions: Counts, totals: Counts, metric_squares: Counts | None = None, axis: int = 0
    ) -> ProfileSums:
        """From per-profile decisions ``n_i`` and totals ``y_i`` along ``axis``; for a 0/1
        metric the sum of ``metric_squares`` is the sum of the totals, the default."""
        n, y = _f(decisions), _f(totals)
        squares = y if metric_squares is None else _f(metric_squares)
        return cls(
            n.sum(axis),
            y.sum(axis),
            (y * y).sum(axis),
            (n * y).sum(axis),
            (n * n).sum(axis),
            squares.sum(axis),
        )

    def look(self, index: int) -> ProfileSums:
        """The sums at one look (an index on the last axis)."""
        return ProfileSums(*(np.asarray(getattr(self, f.name)[..., index]) for f in fields(self)))

    @property
    def mean(self) -> FloatArray:
        """Per-decision mean ``sum y_i / sum n_i`` (0 without decisions)."""
        return _ratio(self.total, self.decisions)

    def variance(self, ddof: int = 0) -> FloatArray:
        """Per-decision variance of the metric (0 with ``ddof`` decisions or fewer)."""
        spread = np.maximum(self.metric_squares - self.total * self.mean, 0.0)
        return _ratio(spread, np.maximum(self.decisions - ddof, 0.0))

    def residual_squares(self) -> FloatArray:
        """``sum_i (y_i - mean n_i)^2``: what the profiles of the group scatter around its mean."""
        m = self.mean
        return np.maximum(self.total_squares - 2 * m * self.cross + m * m * self.decision_squares, 0.0)


def design_effects(groups: Sequence[ProfileSums], ddof: int = 0) -> list[FloatArray]:
    """The design effect of each group, with one intra-profile correlation pooled over them.

    Moments: ``sum_i (y_i - m n_i)^2`` estimates ``sigma^2 (sum n_i + rho sum n_i (n_i - 1))``
    in every group, so ``rho = sum_g (residuals_g - sigma_g^2 sum n_i) / sum_g sigma_g^2
    sum n_i (n_i - 1)``, clipped to [0, 1]; 0 where no profile has two decisions. A group's
    design effect is never below its own cluster-robust (sandwich) one, ``residuals_g /
    (sigma_g^2 sum n_i)``: the pooled model keeps a sparse group from collapsing, the
    sandwich keeps the model from understating a group whose profiles scatter more (with
    very heavy-tailed activity the moment estimate of ``rho`` is noisy, and the larger of the
    two held A/A tests near their level where either alone rejected 7-10% of the time).
    """
    variances = [g.variance(ddof) for g in groups]
    excess = sum(g.residual_squares() - v * g.decisions for g, v in zip(groups, variances, strict=True))
    pairs = sum(v * (g.decision_squares - g.decisions) for g, v in zip(groups, variances, strict=True))
    rho = np.clip(_ratio(excess, pairs), 0.0, 1.0)
    return [
        np.maximum(
            1.0 + rho * np.maximum(_ratio(g.decision_squares, g.decisions) - 1.0, 0.0),
            _ratio(g.residual_squares(), v * g.decisions),
        )
        for g, v in zip(groups, variances, strict=True)
    ]


def rate(conversions: Counts, decisions: Counts, alpha: float = 0.05, deff: Counts = 1.0) -> IntervalEstimate:
    """Conversion rate with a Wilson score interval on the effective counts (statsmodels
    ``proportion_confint`` 'wilson' at ``deff`` 1; written out here because importing
    statsmodels costs the CLI a second)."""
    x, n, z = _f(conversions) / _f(deff), _f(decisions) / _f(deff), _z(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = (x + z**2 / 2) / (n + z**2)
        half = z / (n + z**2) * np.sqrt(x * (n - x) / n + z**2 / 4)
        # Exact ends where rounding would leave 1e-17 off: no conversions, or all of them.
        low = np.where(x == 0, 0.0, np.clip(center - half, 0, 1))
        high = np.where(x == n, 1.0, np.clip(center + half, 0, 1))
        return IntervalEstimate(x / n, low, high)


def difference_of_proportions(
    x_t: Counts,
    n_t: Counts,
    x_c: Counts,
    n_c: Counts,
    alpha: float = 0.05,
    *,
    deff_t: Counts = 1.0,
    deff_c: Counts = 1.0,
) -> IntervalEstimate:
    """``p_t - p_c`` with the Wald interval (statsmodels ``confint_proportions_2indep`` 'wald'
    at design effects 1)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_t, p_c = _f(x_t) / _f(n_t), _f(x_c) / _f(n_c)
        diff = p_t - p_c
        se = np.sqrt(_f(deff_t) * p_t * (1 - p_t) / _f(n_t) + _f(deff_c) * p_c * (1 - p_c) / _f(n_c))
    return IntervalEstimate(diff, diff - _z(alpha) * se, diff + _z(alpha) * se)


def relative_lift(
    x_t: Counts,
    n_t: Counts,
    x_c: Counts,
    n_c: Counts,
    alpha: float = 0.05,
    *,
    deff_t: Counts = 1.0,
    deff_c: Counts = 1.0,
) -> IntervalEstimate:
    """``p_t / p_c - 1`` with the log (Katz) interval ``exp(log r +- z sqrt(1/x_t - 1/n_t +
    1/x_c - 1/n_c)) - 1`` on effective counts: statsmodels ``confint_proportions_2indep``
    'log' (ratio), and 'log-adjusted' (0.5 added to both groups) where either has 0
    conversions. Never below -100%, never NaN while both groups have decisions."""
    xt, nt = _f(x_t) / _f(deff_t), _f(n_t) / _f(deff_t)
    xc, nc = _f(x_c) / _f(deff_c), _f(n_c) / _f(deff_c)
    half = np.where((xt == 0) | (xc == 0), 0.5, 0.0)
    xt, nt, xc, nc = xt + half, nt + half, xc + half, nc + half
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.log(xt / nt) - np.log(xc / nc)
        se = np.sqrt(1 / xt - 1 / nt + 1 / xc - 1 / nc)
    z = _z(alpha)
    return IntervalEstimate(np.expm1(log_ratio), np.expm1(log_ratio - z * se), np.expm1(log_ratio + z * se))


def two_proportion_z_test(
    x_t: Counts, n_t: Counts, x_c: Counts, n_c: Counts, *, deff_t: Counts = 1.0, deff_c: Counts = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Pooled two-sided z test of ``p_t == p_c``: (z, p-value), as statsmodels
    ``proportions_ztest`` at design effects 1."""
    xt, nt, xc, nc = _f(x_t), _f(n_t), _f(x_c), _f(n_c)
    pooled = (xt + xc) / (nt + nc)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (xt / nt - xc / nc) / np.sqrt(pooled * (1 - pooled) * (_f(deff_t) / nt + _f(deff_c) / nc))
    return z, _f(2 * sps.norm.sf(np.abs(z)))


def mean_interval(
    mean: Counts, variance: Counts, n: Counts, alpha: float = 0.05, deff: Counts = 1.0
) -> IntervalEstimate:
    """A per-decision mean with the normal interval ``mean +- z sqrt(deff variance / n)``."""
    m = _f(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = _z(alpha) * np.sqrt(_f(deff) * _f(variance) / _f(n))
    return IntervalEstimate(m, m - half, m + half)


def relative_lift_of_means(
    mean_t: Counts,
    var_t: Counts,
    n_t: Counts,
    mean_c: Counts,
    var_c: Counts,
    n_c: Counts,
    alpha: float = 0.05,
    *,
    deff_t: Counts = 1.0,
    deff_c: Counts = 1.0,
) -> IntervalEstimate:
    """``mean_t / mean_c - 1`` with a delta-method interval on the log scale:
    Var(log m) ~= deff var / (n m^2), so the interval stays above -100%. NaN (undefined)
    unless both means are positive. ``var_*`` are per-decision variances."""
    mt, mc = _f(mean_t), _f(mean_c)
    defined = (mt > 0) & (mc > 0)
    safe_t, safe_c = np.where(defined, mt, 1.0), np.where(defined, mc, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.log(safe_t) - np.log(safe_c)
        se = np.sqrt(
            _f(deff_t) * _f(var_t) / _f(n_t) / safe_t**2 + _f(deff_c) * _f(var_c) / _f(n_c) / safe_c**2
        )
    z, nan = _z(alpha), np.full(log_ratio.shape, np.nan)
    return IntervalEstimate(
        np.where(defined, np.expm1(log_ratio), nan),
        np.where(defined, np.expm1(log_ratio - z * se), nan),
        np.where(defined, np.expm1(log_ratio + z * se), nan),
    )


@dataclass(frozen=True)
class WelchResult:
    difference: IntervalEstimate
    t: FloatArray
    df: FloatArray
    p_value: FloatArray


def welch_t_test(
    mean_t: Counts,
    sd_t: Counts,
    n_t: Counts,
    mean_c: Counts,
    sd_c: Counts,
    n_c: Counts,
    alpha: float = 0.05,
    *,
    deff_t: Counts = 1.0,
    deff_c: Counts = 1.0,
) -> WelchResult:
    """Welch's unequal-variance t test from summary statistics on the effective sample sizes
    ``n / deff`` (scipy ``ttest_ind_from_stats`` at design effects 1), with the
    Welch-Satterthwaite interval for ``mean_t - mean_c``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        eff_t, eff_c = _f(n_t) / _f(deff_t), _f(n_c) / _f(deff_c)
        vt, vc = _f(sd_t) ** 2 / eff_t, _f(sd_c) ** 2 / eff_c
        df = (vt + vc) ** 2 / (vt**2 / (eff_t - 1) + vc**2 / (eff_c - 1))
        diff = _f(mean_t) - _f(mean_c)
        t = diff / np.sqrt(vt + vc)
        p = 2 * sps.t.sf(np.abs(t), df)
        half = sps.t.ppf(1 - alpha / 2, df) * np.sqrt(vt + vc)
    return WelchResult(IntervalEstimate(diff, diff - half, diff + half), _f(t), _f(df), _f(p))


def probability_to_beat(
    x_t: float, n_t: float, x_c: float, n_c: float, prior: tuple[float, float] = (1.0, 1.0)
) -> float:
    """P(p_t > p_c) under independent Beta(prior + successes, prior + failures) posteriors.

    Exact for integer ``a``: with A = posterior of control, B of treatment (Evan Miller's
    closed form), P(p_B > p_A) = sum_{i < a_B} B(a_A + i, b_A + b_B) /
    ((b_B + i) B(1 + i, b_B) B(a_A, b_A)), summed in log space over the smaller of the two
    ``a`` (using P(p_B > p_A) = 1 - P(p_A > p_B)). Otherwise (effective counts, which are
    fractional) the integral of f_t F_c, numerically.
    """
    a_t, b_t = prior[0] + x_t, prior[1] + n_t - x_t
    a_c, b_c = prior[0] + x_c, prior[1] + n_c - x_c
    if min(a_t, b_t, a_c, b_c) <= 0:
        raise ValueError("Beta posteriors need positive parameters")
    if not (float(a_t).is_integer() and float(a_c).is_integer()):
        return _beats_numerically(a_t, b_t, a_c, b_c)
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


def _beats_numerically(a_t: float, b_t: float, a_c: float, b_c: float) -> float:
    treatment, control = sps.beta(a_t, b_t), sps.beta(a_c, b_c)
    lo = min(treatment.ppf(1e-12), control.ppf(1e-12))
    hi = max(treatment.isf(1e-12), control.isf(1e-12))
    points = sorted({float(treatment.mean()), float(control.mean())})
    value, _ = integrate.quad(lambda p: treatment.pdf(p) * control.cdf(p), lo, hi, points=points, limit=200)
    return float(np.clip(value, 0.0, 1.0))


def holm(p_values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    """Holm's step-down adjustment of a family of p-values (statsmodels ``multipletests``
    'holm'): controls the chance of any false positive in the family at alpha. NaN entries
    (no test) stay NaN and do not count in the family."""
    p = _f(p_values).ravel()
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = np.full(p.shape, np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    steps = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else np.empty(0)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted.reshape(np.shape(p_values))


def sample_ratio_mismatch(observed: Sequence[int], shares: Sequence[float]) -> float:
    """p-value of a chi-square goodness-of-fit test of observed group sizes against shares.

    A group with share 0 that has any traffic is a mismatch by definition (p = 0): the
    chi-square term ``observed^2 / 0`` is infinite. Groups with share 0 and no traffic drop out.
    """
    counts, weights = _f(observed), _f(shares)
    if counts.shape != weights.shape or counts.ndim != 1:
        raise ValueError(f"need one share per group: {len(observed)} groups, {len(shares)} shares")
    if (weights < 0).any() or (counts < 0).any() or weights.sum() <= 0:
        raise ValueError(f"shares must be non-negative with a positive sum, counts non-negative: {shares}")
    if ((weights == 0) & (counts > 0)).any():
        return 0.0
    kept = weights > 0
    expected = weights[kept] / weights[kept].sum() * counts.sum()
    if counts.sum() == 0 or kept.sum() < 2:
        return 1.0
    return float(sps.chisquare(counts[kept], expected).pvalue)
