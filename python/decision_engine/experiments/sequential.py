"""Always-valid inference for a difference of proportions: the mixture SPRT (mSPRT).

Johari, Koomen, Pekelis, Walsh, "Always Valid Inference: Continuous Monitoring of A/B
Tests" (2017; Operations Research 2022). With the estimate ``d = p_t - p_c``, its variance
``V = p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c`` and a normal mixture N(theta0, tau^2) over the
true difference, the mixture likelihood ratio against ``theta = theta0`` is

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 (d - theta0)^2 / (2 V (V + tau^2)))

The always-valid p-value is the running minimum of ``min(1, 1 / Lambda)``: stopping at any
look the data suggest, ``P(p <= alpha) <= alpha`` under the null. Inverting ``Lambda < 1/alpha``
gives a confidence sequence that covers the truth at every look at once:

    d +- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V)))

intersected over the looks so far. ``tau`` (the mixture standard deviation) should be set
before the experiment starts, on the scale of the differences one expects; any fixed value
keeps the guarantees, a good one gives power. ``V`` is a plug-in estimate, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


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
    difference: npt.ArrayLike, variance: npt.ArrayLike, mixture_sd: float, null: float = 0.0
) -> FloatArray:
    """log Lambda; 0 (no evidence) where the variance is 0."""
    d, v = np.asarray(difference, dtype=np.float64), np.asarray(variance, dtype=np.float64)
    tau2 = mixture_sd**2
    safe = np.where(v > 0, v, 1.0)
    log_lr = 0.5 * np.log(safe / (safe + tau2)) + tau2 * (d - null) ** 2 / (2 * safe * (safe + tau2))
    return np.where(v > 0, log_lr, 0.0)


def msprt_difference_of_proportions(
    x_t: npt.ArrayLike,
    n_t: npt.ArrayLike,
    x_c: npt.ArrayLike,
    n_c: npt.ArrayLike,
    *,
    mixture_sd: float,
    alpha: float = 0.05,
    null: float = 0.0,
) -> ConfidenceSequence:
    """mSPRT over looks: cumulative conversions and decisions per group, looks on the last axis."""
    if mixture_sd <= 0:
        raise ValueError("mixture_sd must be positive")
    xt, nt = np.asarray(x_t, dtype=np.float64), np.asarray(n_t, dtype=np.float64)
    xc, nc = np.asarray(x_c, dtype=np.float64), np.asarray(n_c, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_t, p_c = xt / np.maximum(nt, 1), xc / np.maximum(nc, 1)
        variance = np.where(
            (nt > 0) & (nc > 0),
            p_t * (1 - p_t) / np.maximum(nt, 1) + p_c * (1 - p_c) / np.maximum(nc, 1),
            0.0,
        )
    difference = p_t - p_c
    log_lr = log_mixture_likelihood_ratio(difference, variance, mixture_sd, null)
    p_value = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)), axis=-1)

    tau2 = mixture_sd**2
    safe = np.where(variance > 0, variance, 1.0)
    half = np.sqrt(safe * (safe + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((safe + tau2) / safe)))
    low = np.where(variance > 0, np.maximum(difference - half, -1.0), -1.0)
    high = np.where(variance > 0, np.minimum(difference + half, 1.0), 1.0)
    return ConfidenceSequence(
        difference, p_value, np.maximum.accumulate(low, axis=-1), np.minimum.accumulate(high, axis=-1)
    )
