"""Always-valid inference for a difference of proportions: the mixture SPRT (mSPRT).

Johari, Koomen, Pekelis, Walsh, "Always Valid Inference: Continuous Monitoring of A/B
Tests" (2017; Operations Research 2022). With the estimate ``d = p_t - p_c``, the variance
``V`` of ``d`` under the hypothesis ``theta = theta0`` and a normal mixture N(theta0, tau^2)
over the true difference, the mixture likelihood ratio against ``theta0`` is

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 (d - theta0)^2 / (2 V (V + tau^2)))

The always-valid p-value is the running minimum of ``min(1, 1 / Lambda(0))``: stopping at any
look the data suggest, ``P(p <= alpha) <= alpha`` under the null. The confidence sequence is
the set of ``theta0`` with ``Lambda(theta0) < 1/alpha`` at a look, intersected over the looks
so far; it excludes 0 exactly when the p-value is at most alpha.

**The variance is pooled, not per group.** The paper plugs in ``p_t (1 - p_t) / n_t +
p_c (1 - p_c) / n_c``. With a small, sparse holdout (5% of traffic, rates near 1%) the control
often has 0 or 1 conversions at the early looks; its variance term then collapses towards 0
exactly when ``d`` is far from 0, and A/A tests reject two to three times too often. Here
``V`` is evaluated at the rates the hypothesis allows: the overall rate ``P = (x_t + x_c) /
(n_t + n_c)`` is kept and split by ``theta0``, ``p_t = P + theta0 n_c / N`` and ``p_c = P -
theta0 n_t / N`` (clipped to [0, 1]). At ``theta0 = 0`` this is the pooled variance of the
two-proportion z test; at the true ``theta0`` it is consistent, and in both cases it rests
mostly on the large group, so a quiet holdout cannot shrink it.

The sequence tests every ``theta0`` with its own mixture sd ``sqrt(tau^2 + (theta0 -
null)^2)``: a fixed function of the hypothesis, chosen before any data, so each test keeps its
level and the set keeps its coverage. Without it the set hardly closes on the far side: ``V``
grows with ``|theta0|`` there, and with a narrow mixture the evidence against a far hypothesis
stops growing (a 5% holdout gave sequences twice as wide, some spanning -40 points). At
``theta0 = null`` it is ``tau``, so the sequence excludes ``null`` exactly when the p-value is
at most alpha. The bounds are found on a grid and by bisection (``V`` changes with
``theta0``, so there is no closed form); the accepted set need not be an interval, and the
sequence is its hull.

Decisions of one profile are correlated: ``deff_t`` and ``deff_c`` (design effects from
``stats.design_effects``, one per look) scale each group's variance, i.e. the test runs on
effective sample sizes. ``tau`` (the mixture standard deviation) should be set before the
experiment starts, on the scale of the differences one expects; any fixed value keeps the
guarantees, a good one gives power.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
GRID_POINTS = 64  # per side, geometric from 1e-7 to the whole range, then bisection
BISECTION_STEPS = 40


@dataclass(frozen=True)
class ConfidenceSequence:
    """Per look (last axis): the estimate, always-valid p-value and confidence sequence."""

    difference: FloatArray
    p_value: FloatArray
    low: FloatArray
    high: FloatArray


def default_mixture_sd(baseline_rate: float, relative_effect: float = 0.2) -> float:
    """A mixture sd for differences around ``relative_effect`` of the baseline rate."""
    return max(relative_effect * baseline_rate, 1e-6)


def log_mixture_likelihood_ratio(
    difference: npt.ArrayLike, variance: npt.ArrayLike, mixture_sd: npt.ArrayLike, null: npt.ArrayLike = 0.0
) -> FloatArray:
    """log Lambda. An infinite variance (a group without decisions) carries no evidence (0);
    a zero variance gives 0 where ``difference == null`` and +inf elsewhere (the hypothesis
    says neither group can convert, or both always do, and the data disagree)."""
    d, v = np.asarray(difference, dtype=np.float64), np.asarray(variance, dtype=np.float64)
    gap = d - np.asarray(null, dtype=np.float64)
    tau2 = np.asarray(mixture_sd, dtype=np.float64) ** 2
    usable = (v > 0) & np.isfinite(v)
    safe = np.where(usable, v, 1.0)
    log_lr = 0.5 * np.log(safe / (safe + tau2)) + tau2 * gap**2 / (2 * safe * (safe + tau2))
    degenerate = np.where((v == 0) & (gap != 0), np.inf, 0.0)
    return np.where(usable, log_lr, degenerate)


@dataclass(frozen=True)
class _Looks:
    """Counts per look as float arrays, with the overall rate the variance is pooled around."""

    x_t: FloatArray
    n_t: FloatArray
    x_c: FloatArray
    n_c: FloatArray
    deff_t: FloatArray
    deff_c: FloatArray

    @property
    def difference(self) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((self.n_t > 0) & (self.n_c > 0), self.x_t / self.n_t - self.x_c / self.n_c, 0.0)

    def variance(self, hypothesis: npt.ArrayLike) -> FloatArray:
        """Var(d) at the rates the hypothesis ``theta`` allows around the overall rate."""
        theta = np.asarray(hypothesis, dtype=np.float64)
        total = self.n_t + self.n_c
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = np.where(total > 0, (self.x_t + self.x_c) / total, 0.0)
            p_t = np.clip(pooled + theta * self.n_c / total, 0.0, 1.0)
            p_c = np.clip(pooled - theta * self.n_t / total, 0.0, 1.0)
            v = self.deff_t * p_t * (1 - p_t) / self.n_t + self.deff_c * p_c * (1 - p_c) / self.n_c
        return np.where((self.n_t > 0) & (self.n_c > 0), v, np.inf)


def msprt_difference_of_proportions(
    x_t: npt.ArrayLike,
    n_t: npt.ArrayLike,
    x_c: npt.ArrayLike,
    n_c: npt.ArrayLike,
    *,
    mixture_sd: float,
    alpha: float = 0.05,
    null: float = 0.0,
    deff_t: npt.ArrayLike = 1.0,
    deff_c: npt.ArrayLike = 1.0,
) -> ConfidenceSequence:
    """mSPRT over looks: cumulative conversions and decisions per group, looks on the last axis."""
    if mixture_sd <= 0:
        raise ValueError("mixture_sd must be positive")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    arrays = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (x_t, n_t, x_c, n_c, deff_t, deff_c))
    )
    looks = _Looks(*arrays)
    d = looks.difference
    log_lr = log_mixture_likelihood_ratio(d, looks.variance(null), mixture_sd, null)
    p_value = _running(np.minimum, np.minimum(1.0, np.exp(-log_lr)))
    threshold = np.log(1 / alpha)

    def outside(theta: FloatArray) -> npt.NDArray[np.bool_]:
        sd = np.sqrt(mixture_sd**2 + (theta - null) ** 2)
        log_lr = log_mixture_likelihood_ratio(d, looks.variance(theta), sd, theta)
        return np.asarray(log_lr >= threshold, dtype=np.bool_)

    low, high = _outermost(outside, d, -1.0), _outermost(outside, d, 1.0)
    # The accepted set need not be an interval (V and the mixture sd change with theta0): the
    # sequence is its hull, cut at a rejected null on the far side from the estimate, so that it
    # excludes the null exactly when the p-value of that look is at most alpha.
    rejected = log_lr >= threshold
    low = np.where(rejected & (d > null), np.maximum(low, np.nextafter(null, np.inf)), np.minimum(low, null))
    high = np.where(
        rejected & (d < null), np.minimum(high, np.nextafter(null, -np.inf)), np.maximum(high, null)
    )
    return ConfidenceSequence(d, p_value, _running(np.maximum, low), _running(np.minimum, high))


def _running(step: np.ufunc, values: FloatArray) -> FloatArray:
    """Running minimum or maximum over the looks (the last axis); a scalar is one look."""
    return values if values.ndim == 0 else np.asarray(step.accumulate(values, axis=-1), dtype=np.float64)


def _outermost(
    outside: Callable[[FloatArray], npt.NDArray[np.bool_]], estimate: FloatArray, limit: float
) -> FloatArray:
    """The farthest accepted point between ``estimate`` (always accepted) and ``limit``: the
    last accepted point of a grid that is fine near the estimate, then bisection to the next."""
    grid = np.concatenate([[0.0], np.geomspace(1e-7, 1.0, GRID_POINTS)])
    last = np.zeros(estimate.shape, dtype=np.int64)
    for k, step in enumerate(grid[1:], start=1):
        last = np.where(outside(estimate + (limit - estimate) * step), last, k)
    near = estimate + (limit - estimate) * grid[last]
    far = estimate + (limit - estimate) * grid[np.minimum(last + 1, grid.size - 1)]
    for _ in range(BISECTION_STEPS):
        middle = (near + far) / 2
        out = outside(middle)
        far = np.where(out, middle, far)
        near = np.where(out, near, middle)
    return np.where(last == grid.size - 1, limit, far)
