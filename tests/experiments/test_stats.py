"""Statistics checked against statsmodels and scipy, and against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from decision_engine.experiments.stats import (
    difference_of_proportions,
    probability_to_beat,
    rate,
    relative_lift,
    sample_ratio_mismatch,
    two_proportion_z_test,
    welch_t_test,
)
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.proportion import (  # type: ignore[import-untyped]
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

# (x_t, n_t, x_c, n_c)
CASES = [(400, 10_000, 300, 10_000), (1_234, 31_000, 61, 1_650), (7, 90, 3, 110), (520, 1_000, 480, 1_000)]


@pytest.mark.parametrize(("x_t", "n_t", "x_c", "n_c"), CASES)
def test_z_test_matches_statsmodels(x_t: int, n_t: int, x_c: int, n_c: int) -> None:
    z, p = two_proportion_z_test(x_t, n_t, x_c, n_c)
    expected_z, expected_p = proportions_ztest([x_t, x_c], [n_t, n_c])
    assert float(z) == pytest.approx(expected_z, rel=1e-10)
    assert float(p) == pytest.approx(expected_p, rel=1e-9)


@pytest.mark.parametrize(("x_t", "n_t", "x_c", "n_c"), CASES)
def test_difference_interval_matches_statsmodels_wald(x_t: int, n_t: int, x_c: int, n_c: int) -> None:
    estimate = difference_of_proportions(x_t, n_t, x_c, n_c)
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff")
    assert float(estimate.value) == pytest.approx(x_t / n_t - x_c / n_c)
    assert (float(estimate.low), float(estimate.high)) == pytest.approx((low, high), rel=1e-9)


def test_relative_lift_agrees_with_log_ratio_interval_for_large_samples() -> None:
    estimate = relative_lift(4_000, 100_000, 3_000, 100_000)
    low, high = confint_proportions_2indep(4_000, 100_000, 3_000, 100_000, method="log", compare="ratio")
    assert float(estimate.value) == pytest.approx(1 / 3)
    assert float(estimate.low) == pytest.approx(low - 1, abs=2e-3)
    assert float(estimate.high) == pytest.approx(high - 1, abs=2e-3)


def test_rate_is_wilson_and_vectorised() -> None:
    estimate = rate([0, 12, 300], [50, 400, 10_000])
    low, high = proportion_confint([0, 12, 300], [50, 400, 10_000], method="wilson")
    np.testing.assert_allclose(estimate.low, low)
    np.testing.assert_allclose(estimate.high, high)
    assert estimate.value.tolist() == [0, 0.03, 0.03]


def test_welch_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(3)
    t_values = rng.lognormal(1.0, 1.0, 800) * (rng.random(800) < 0.3)
    c_values = rng.lognormal(1.0, 1.1, 500) * (rng.random(500) < 0.25)
    result = welch_t_test(
        t_values.mean(), t_values.std(ddof=1), 800, c_values.mean(), c_values.std(ddof=1), 500
    )
    expected = sps.ttest_ind(t_values, c_values, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert float(result.t) == pytest.approx(expected.statistic)
    assert float(result.p_value) == pytest.approx(expected.pvalue)
    assert float(result.df) == pytest.approx(expected.df)
    assert (float(result.difference.low), float(result.difference.high)) == pytest.approx(
        (interval.low, interval.high)
    )


@pytest.mark.parametrize(("x_t", "n_t", "x_c", "n_c"), [(40, 1000, 30, 1000), (3, 20, 9, 25), (0, 10, 0, 10)])
def test_probability_to_beat_matches_numerical_integral(x_t: int, n_t: int, x_c: int, n_c: int) -> None:
    treatment, control = sps.beta(1 + x_t, 1 + n_t - x_t), sps.beta(1 + x_c, 1 + n_c - x_c)
    lo, hi = min(treatment.ppf(1e-12), control.ppf(1e-12)), max(treatment.isf(1e-12), control.isf(1e-12))
    expected, _ = integrate.quad(lambda p: treatment.pdf(p) * control.cdf(p), lo, hi, limit=200)
    assert probability_to_beat(x_t, n_t, x_c, n_c) == pytest.approx(expected, abs=1e-7)


def test_probability_to_beat_large_counts_and_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    draws_t = rng.beta(1 + 4_100, 1 + 100_000 - 4_100, 400_000)
    draws_c = rng.beta(1 + 4_000, 1 + 100_000 - 4_000, 400_000)
    assert probability_to_beat(4_100, 100_000, 4_000, 100_000) == pytest.approx(
        (draws_t > draws_c).mean(), abs=3e-3
    )
    assert probability_to_beat(3, 10, 3, 10) == pytest.approx(0.5)
    forward, backward = probability_to_beat(50, 900, 70, 1000), probability_to_beat(70, 1000, 50, 900)
    assert forward + backward == pytest.approx(1.0)


def test_sample_ratio_mismatch() -> None:
    observed, shares = [50_510, 949_490], [0.05, 0.95]
    expected = np.array(shares) * sum(observed)
    statistic = float(((np.array(observed) - expected) ** 2 / expected).sum())
    assert sample_ratio_mismatch(observed, shares) == pytest.approx(float(sps.chi2.sf(statistic, 1)))
    assert sample_ratio_mismatch([5_000, 95_000], shares) == pytest.approx(1.0)
    # A 1% shortfall in a 5% holdout of a million is a clear mismatch.
    assert sample_ratio_mismatch([49_500, 950_500], shares) < 0.05
