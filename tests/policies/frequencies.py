"""Reported propensities against choice frequencies: the check the Thompson propensity tests
share (`assert_matches_frequencies`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

# Noise allowances, in standard errors of a frequency (the draws are seeded: deterministic).
ISSUE_SE = 3.0
TIGHT_SE = 5.0
# An arm enters the relative check when this many picks are expected.
MEASURABLE = 30.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def reported_per_arm(choices: IntArray, propensities: FloatArray, n_arms: int) -> FloatArray:
    """Each chosen arm's reported propensity (NaN for arms never chosen); a context-free state
    reports one number per arm."""
    reported = np.full(n_arms, np.nan)
    for arm in np.unique(choices):
        values = np.unique(propensities[choices == arm])
        assert values.size == 1, (arm, values)
        reported[arm] = values[0]
    return reported


def assert_matches_frequencies(
    choices: IntArray, propensities: FloatArray, probabilities: FloatArray
) -> None:
    """``choices`` and their ``propensities`` (one draw per row, one law) against the choice
    frequencies, and against ``probabilities``, the distribution `action_probabilities` gives."""
    n_arms = probabilities.shape[0]
    n = choices.shape[0]
    assert n >= 10_000
    frequency = np.bincount(choices, minlength=n_arms) / n
    reported = reported_per_arm(choices, propensities, n_arms)
    chosen = np.flatnonzero(~np.isnan(reported))
    assert chosen.size >= min(2, n_arms)
    p = reported[chosen]
    f = frequency[chosen]
    se = np.sqrt(p * (1 - p) / n)
    off = np.abs(p - f) > np.maximum(0.005, 0.05 * f) + ISSUE_SE * se
    assert not off.any(), [(int(a), reported[a], frequency[a]) for a in chosen[off]]
    # The relative check, over every arm expected often enough (chosen or not).
    measurable = np.flatnonzero(probabilities * n >= MEASURABLE)
    assert measurable.size >= 1
    q = probabilities[measurable]
    se = np.sqrt(q * (1 - q) / n)
    off = np.abs(q - frequency[measurable]) > 0.05 * q + TIGHT_SE * se
    assert not off.any(), [(int(a), probabilities[a], frequency[a]) for a in measurable[off]]
    # action_probabilities is the same computation, normalised to sum to 1 (the integration
    # leaves 1e-6 to 1e-5 in the total); a reported propensity is floored so that importance
    # weights stay finite, so below the floor it is higher (and the same floor).
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    high = probabilities[chosen] >= 1e-4
    assert np.allclose(p[high], probabilities[chosen][high], rtol=1e-4, atol=0)
    low_p, low_q = p[~high], probabilities[chosen][~high]
    differ = ~np.isclose(low_p, low_q, rtol=1e-4, atol=0)
    floored = low_p[differ]
    assert (floored > low_q[differ]).all()
    assert np.unique(floored).size <= 1
