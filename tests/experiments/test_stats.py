"""Statistics checked against statsmodels and scipy, and against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm  # type: ignore[import-untyped]
from decision_engine.experiments.sequential import msprt_difference_of_proportions
from decision_engine.experiments.stats import (
    ProfileSums,
    design_effects,
    difference_of_proportions,
    holm,
    probability_to_beat,
    rate,
    relative_lift,
    relative_lift_of_means,
    sample_ratio_mismatch,
    two_proportion_z_test,
    welch_t_test,
)
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped]
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


ZERO_CASES = [(0, 1_000, 5, 100), (5, 1_000, 0, 50), (0, 10, 0, 10)]


@pytest.mark.parametrize(("x_t", "n_t", "x_c", "n_c"), CASES + ZERO_CASES)
def test_lift_is_the_katz_log_interval_of_statsmodels(x_t: int, n_t: int, x_c: int, n_c: int) -> None:
    """'log' as it is; 'log-adjusted' (0.5 added to both groups) when a group has no conversion."""
    estimate = relative_lift(x_t, n_t, x_c, n_c)
    method = "log-adjusted" if 0 in (x_t, x_c) else "log"
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method=method, compare="ratio")
    assert (float(estimate.low), float(estimate.high)) == pytest.approx((low - 1, high - 1), rel=1e-9)
    assert -1 < float(estimate.low) <= float(estimate.value) <= float(estimate.high) < np.inf


def test_design_effect_means_effective_sample_size_in_every_formula() -> None:
    x_t, n_t, x_c, n_c, deff_t, deff_c = 1_234, 31_000, 61, 1_650, 2.5, 1.6
    eff = (x_t / deff_t, n_t / deff_t, x_c / deff_c, n_c / deff_c)
    low, high = proportion_confint(eff[0], eff[1], method="wilson")
    wilson = rate(x_t, n_t, deff=deff_t)
    assert (float(wilson.low), float(wilson.high)) == pytest.approx((low, high), rel=1e-9)
    wald = difference_of_proportions(x_t, n_t, x_c, n_c, deff_t=deff_t, deff_c=deff_c)
    assert (float(wald.low), float(wald.high)) == pytest.approx(
        confint_proportions_2indep(*eff, method="wald", compare="diff"), rel=1e-9
    )
    katz = relative_lift(x_t, n_t, x_c, n_c, deff_t=deff_t, deff_c=deff_c)
    low, high = confint_proportions_2indep(*eff, method="log", compare="ratio")
    assert (float(katz.low), float(katz.high)) == pytest.approx((low - 1, high - 1), rel=1e-9)
    z, p = two_proportion_z_test(x_t, n_t, x_c, n_c, deff_t=deff_t, deff_c=deff_c)
    pooled = (x_t + x_c) / (n_t + n_c)
    expected_z = (x_t / n_t - x_c / n_c) / np.sqrt(pooled * (1 - pooled) * (deff_t / n_t + deff_c / n_c))
    assert float(z) == pytest.approx(expected_z, rel=1e-12)
    assert float(p) == pytest.approx(2 * sps.norm.sf(abs(expected_z)), rel=1e-9)
    welch = welch_t_test(3.1, 9.0, n_t, 2.4, 7.5, n_c, deff_t=deff_t, deff_c=deff_c)
    expected = sps.ttest_ind_from_stats(3.1, 9.0, n_t / deff_t, 2.4, 7.5, n_c / deff_c, equal_var=False)
    assert float(welch.p_value) == pytest.approx(expected.pvalue, rel=1e-9)


def _clustered_decisions(seed: int, profiles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(profile of each decision, 0/1 outcome, value) with profiles of their own rate and activity."""
    rng = np.random.default_rng(seed)
    n = 1 + rng.poisson(rng.pareto(2.0, profiles) * 6)
    owner = np.repeat(np.arange(profiles), n)
    converted = (rng.random(owner.size) < rng.beta(0.6, 20, profiles)[owner]).astype(float)
    return owner, converted, converted * rng.lognormal(3.0, 0.6, owner.size)


def test_profile_sandwich_is_statsmodels_cluster_robust_variance_and_a_floor_of_the_design_effect() -> None:
    owner, converted, value = _clustered_decisions(4, 600)
    for metric, ddof in ((converted, 0), (value, 1)):
        n, y = np.bincount(owner).astype(float), np.bincount(owner, weights=metric)
        sums = ProfileSums.of_profiles(n, y, np.bincount(owner, weights=metric**2))
        fit = sm.OLS(metric, np.ones(metric.size)).fit(cov_type="cluster", cov_kwds={"groups": owner})
        profiles = n.size
        sandwich = float(sums.residual_squares() / sums.decisions**2) * profiles / (profiles - 1)
        assert fit.bse[0] ** 2 == pytest.approx(sandwich, rel=1e-9)
        assert float(sums.mean) == pytest.approx(fit.params[0], rel=1e-12)
        assert float(sums.variance(ddof)) == pytest.approx(metric.var(ddof=ddof), rel=1e-9)
        (deff,) = design_effects([sums], ddof)
        assert float(deff) > 1.5  # these profiles are strongly correlated
        assert (
            float(deff * sums.variance(ddof) / sums.decisions) >= sandwich * (profiles - 1) / profiles * 0.999
        )


def test_independent_decisions_have_design_effect_one() -> None:
    rng = np.random.default_rng(9)
    converted = (rng.random(5_000) < 0.03).astype(float)
    by_decision = ProfileSums.of_decisions(converted.sum(), converted.size)
    by_profile = ProfileSums.of_profiles(np.ones(converted.size), converted)
    assert by_decision == by_profile
    deffs = design_effects([by_decision, ProfileSums.of_decisions(40, 1_000)])
    np.testing.assert_allclose(deffs, 1.0, rtol=1e-12)


def test_pooled_correlation_keeps_a_group_without_conversions_from_collapsing() -> None:
    owner, converted, _ = _clustered_decisions(6, 2_000)
    n, y = np.bincount(owner).astype(float), np.bincount(owner, weights=converted)
    treatment = ProfileSums.of_profiles(n[100:], y[100:])
    holdout = ProfileSums.of_profiles(n[:100], np.zeros(100))  # no conversion at all
    deff_t, deff_c = design_effects([treatment, holdout])
    assert float(deff_t) > 1.5 and float(deff_c) > 1.0
    assert float(deff_c) == pytest.approx(
        1
        + (float(deff_t) - 1)
        * (n[:100] @ n[:100] / n[:100].sum() - 1)
        / (n[100:] @ n[100:] / n[100:].sum() - 1),
        rel=1e-9,
    )


def test_holm_matches_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.04, 0.0001, 0.5]
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)
    with_nan = holm([0.01, float("nan"), 0.04])
    np.testing.assert_allclose(with_nan[[0, 2]], multipletests([0.01, 0.04], method="holm")[1])
    assert np.isnan(with_nan[1]) and holm([]).size == 0


def test_sample_ratio_mismatch_fails_a_group_at_zero_share_with_traffic() -> None:
    assert sample_ratio_mismatch([500, 480, 230], [0.5, 0.5, 0.0]) == 0.0
    assert sample_ratio_mismatch([500, 480, 0], [0.5, 0.5, 0.0]) == sample_ratio_mismatch(
        [500, 480], [0.5, 0.5]
    )
    with pytest.raises(ValueError, match="one share per group"):
        sample_ratio_mismatch([1, 2, 3], [0.5, 0.5])
    with pytest.raises(ValueError, match="non-negative"):
        sample_ratio_mismatch([1, 2], [-0.5, 1.5])


def test_probability_to_beat_on_fractional_effective_counts() -> None:
    rng = np.random.default_rng(1)
    draws_t = rng.beta(1 + 40.4, 1 + 1_000.8 - 40.4, 400_000)
    draws_c = rng.beta(1 + 30.7, 1 + 990.2 - 30.7, 400_000)
    assert probability_to_beat(40.4, 1_000.8, 30.7, 990.2) == pytest.approx(
        (draws_t > draws_c).mean(), abs=3e-3
    )
    assert probability_to_beat(40.0, 1_000.5, 30.0, 1_000.5) == pytest.approx(
        probability_to_beat(40, 1_000, 30, 1_000), abs=1e-3
    )


def test_value_lift_is_a_log_interval_and_undefined_without_a_positive_mean() -> None:
    lift = relative_lift_of_means(
        [2.0, 0.5, 1.0], [40.0, 40.0, 1.0], 400, [1.0, 1.0, 0.0], [30.0, 30.0, 0.0], 50
    )
    se = np.sqrt(40 / 400 / 4 + 30 / 50)
    assert float(lift.low[0]) == pytest.approx(2 * np.exp(-1.959963984540054 * se) - 1, rel=1e-9)
    assert (lift.low[:2] > -1).all() and np.isnan(lift.value[2]) and np.isnan(lift.low[2])


def test_msprt_p_value_uses_the_pooled_variance_and_agrees_with_its_sequence() -> None:
    x_t, n_t, x_c, n_c, tau = 130, 10_000, 2, 500, 0.002
    sequence = msprt_difference_of_proportions(x_t, n_t, x_c, n_c, mixture_sd=tau)
    pooled = (x_t + x_c) / (n_t + n_c)
    v, d = pooled * (1 - pooled) * (1 / n_t + 1 / n_c), x_t / n_t - x_c / n_c
    log_lr = 0.5 * np.log(v / (v + tau**2)) + tau**2 * d**2 / (2 * v * (v + tau**2))
    assert float(sequence.p_value) == pytest.approx(min(1.0, np.exp(-log_lr)), rel=1e-12)
    rng = np.random.default_rng(2)
    x_t, x_c = rng.binomial(10_000, 0.02, 2_000), rng.binomial(2_000, rng.uniform(0.004, 0.02, 2_000))
    many = msprt_difference_of_proportions(x_t[:, None], 10_000, x_c[:, None], 2_000, mixture_sd=tau)
    excludes_zero = (many.low > 0) | (many.high < 0)
    assert excludes_zero.any() and not excludes_zero.all()
    np.testing.assert_array_equal(excludes_zero, many.p_value <= 0.05)
    with pytest.raises(ValueError, match="mixture_sd"):
        msprt_difference_of_proportions(1, 10, 1, 10, mixture_sd=0.0)
