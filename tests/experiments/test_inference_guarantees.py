"""Simulated experiments: intervals cover at their nominal rate, peeking stays valid with mSPRT.

All simulations are vectorised across experiments and seeded, so the figures are fixed.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from decision_engine.experiments.sequential import (
    ConfidenceSequence,
    default_mixture_sd,
    log_mixture_likelihood_ratio,
    msprt_difference_of_proportions,
)
from decision_engine.experiments.stats import (
    ProfileSums,
    design_effects,
    difference_of_proportions,
    relative_lift,
    relative_lift_of_means,
    two_proportion_z_test,
    welch_t_test,
)

ALPHA = 0.05
EXPERIMENTS = 400


def test_fixed_horizon_intervals_cover_the_true_lift() -> None:
    rng = np.random.default_rng(2017)
    n, p_c, p_t = 20_000, 0.03, 0.036
    x_t, x_c = rng.binomial(n, p_t, EXPERIMENTS), rng.binomial(n, p_c, EXPERIMENTS)
    absolute = difference_of_proportions(x_t, n, x_c, n).contains(p_t - p_c).mean()
    relative = relative_lift(x_t, n, x_c, n).contains(p_t / p_c - 1).mean()
    assert 0.92 <= absolute <= 0.98, absolute
    assert 0.92 <= relative <= 0.98, relative


def test_welch_interval_covers_the_true_value_difference() -> None:
    rng = np.random.default_rng(7)
    n, shape = 4_000, (EXPERIMENTS, 4_000)
    # Value per decision: converted (rate p) times a lognormal order value.
    values_t = (rng.random(shape) < 0.04) * rng.lognormal(3.0, 0.8, shape)
    values_c = (rng.random(shape) < 0.03) * rng.lognormal(3.0, 0.8, shape)
    truth = (0.04 - 0.03) * np.exp(3.0 + 0.8**2 / 2)
    result = welch_t_test(
        values_t.mean(1), values_t.std(1, ddof=1), n, values_c.mean(1), values_c.std(1, ddof=1), n
    )
    coverage = result.difference.contains(truth).mean()
    assert 0.92 <= coverage <= 0.98, coverage


def _cumulative(rng: np.random.Generator, experiments: int, looks: int, batch: int, p: float) -> np.ndarray:
    return rng.binomial(batch, p, (experiments, looks)).cumsum(axis=1)


def test_peeking_after_every_batch_keeps_msprt_at_alpha_but_not_the_z_test() -> None:
    rng = np.random.default_rng(11)
    experiments, looks, batch, p = 2_000, 50, 400, 0.04
    x_t, x_c = _cumulative(rng, experiments, looks, batch, p), _cumulative(rng, experiments, looks, batch, p)
    n = batch * np.arange(1, looks + 1)
    sequential = msprt_difference_of_proportions(
        x_t, n, x_c, n, mixture_sd=default_mixture_sd(p), alpha=ALPHA
    )
    msprt_false_positives = (sequential.p_value[:, -1] <= ALPHA).mean()
    cs_misses = ((sequential.low[:, -1] > 0) | (sequential.high[:, -1] < 0)).mean()
    _, z_p = two_proportion_z_test(x_t, n, x_c, n)
    peeking_z_false_positives = (z_p <= ALPHA).any(axis=1).mean()
    final_look_z_false_positives = (z_p[:, -1] <= ALPHA).mean()

    assert msprt_false_positives <= ALPHA + 0.01, msprt_false_positives
    assert cs_misses <= ALPHA + 0.01, cs_misses
    # The contrast: stopping at the first significant z test fails several times as often.
    assert peeking_z_false_positives > 3 * ALPHA, peeking_z_false_positives
    assert abs(final_look_z_false_positives - ALPHA) < 0.015, final_look_z_false_positives


def test_confidence_sequence_covers_a_true_lift_at_every_look_and_finds_it() -> None:
    rng = np.random.default_rng(12)
    experiments, looks, batch, p_c, p_t = 2_000, 50, 400, 0.04, 0.05
    x_t, x_c = (
        _cumulative(rng, experiments, looks, batch, p_t),
        _cumulative(rng, experiments, looks, batch, p_c),
    )
    n = batch * np.arange(1, looks + 1)
    sequential = msprt_difference_of_proportions(
        x_t, n, x_c, n, mixture_sd=default_mixture_sd(p_c), alpha=ALPHA
    )
    truth = p_t - p_c
    covered_throughout = ((sequential.low <= truth) & (truth <= sequential.high)).all(axis=1).mean()
    power = (sequential.p_value[:, -1] <= ALPHA).mean()
    assert covered_throughout >= 1 - ALPHA - 0.01, covered_throughout
    assert power > 0.5, power


# A small, sparse universal holdout, as the issue describes it: 5% of profiles, rates near 1%,
# heavy-tailed activity (Pareto 1.5 + 1, as simulate.py) and profiles that differ in how readily
# they convert (Beta rates), so one profile's decisions are correlated. Per look and profile the
# decisions are Poisson; the tests peek after every batch (look).
PROFILES, LOOKS, HOLDOUT, RATE = 2_000, 20, 0.05, 0.01


def _sparse_holdout_experiments(
    seed: int, experiments: int, lift: float = 0.0, concentration: float = 200.0, chunk: int = 50
) -> tuple[ProfileSums, ProfileSums]:
    """(treatment, control) sums over profiles at every look, arrays of shape (experiments,
    LOOKS); simulated ``chunk`` experiments at a time, so memory stays near 50 MB."""
    rng = np.random.default_rng(seed)
    parts: list[tuple[ProfileSums, ProfileSums]] = []
    for start in range(0, experiments, chunk):
        size = (min(chunk, experiments - start), PROFILES)
        activity = rng.pareto(1.5, size) + 1.0
        activity /= activity.mean(axis=1, keepdims=True)
        rates = rng.beta(RATE * concentration, (1 - RATE) * concentration, size)
        control = rng.random(size) < HOLDOUT
        rates = np.where(control, rates, rates * (1 + lift))
        decisions = rng.poisson(activity[..., None], (*size, LOOKS))
        conversions = rng.binomial(decisions, rates[..., None])
        n, x = decisions.cumsum(axis=2).astype(float), conversions.cumsum(axis=2).astype(float)
        in_control = control[..., None]
        parts.append(
            (
                ProfileSums.of_profiles(n * ~in_control, x * ~in_control, axis=1),
                ProfileSums.of_profiles(n * in_control, x * in_control, axis=1),
            )
        )

    def joined(k: int) -> ProfileSums:
        fields = [f.name for f in dataclasses.fields(ProfileSums)]
        return ProfileSums(*(np.concatenate([getattr(p[k], name) for p in parts]) for name in fields))

    return joined(0), joined(1)


def _sequence(treatment: ProfileSums, control: ProfileSums, **options: float) -> ConfidenceSequence:
    deff_t, deff_c = design_effects([treatment, control])
    return msprt_difference_of_proportions(
        treatment.total,
        treatment.decisions,
        control.total,
        control.decisions,
        mixture_sd=default_mixture_sd(RATE),
        alpha=ALPHA,
        deff_t=deff_t,
        deff_c=deff_c,
        **options,
    )


def _per_group_plug_in_p_value(treatment: ProfileSums, control: ProfileSums) -> np.ndarray:
    """The paper's plug-in variance p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c: the contrast."""
    p_t, p_c = treatment.mean, control.mean
    variance = p_t * (1 - p_t) / treatment.decisions + p_c * (1 - p_c) / np.maximum(control.decisions, 1)
    log_lr = log_mixture_likelihood_ratio(p_t - p_c, variance, default_mixture_sd(RATE))
    return np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)), axis=-1)


def test_sparse_holdout_a_a_peeking_after_every_batch_keeps_the_always_valid_test_at_alpha() -> None:
    """The issue's 'Done when': 500 A/A experiments, 5% holdout, rates near 1%, a look after
    every batch. The per-group plug-in rejects several times too often on the same data."""
    started = time.perf_counter()
    treatment, control = _sparse_holdout_experiments(seed=17, experiments=500)
    always_valid = _sequence(treatment, control).p_value[:, -1] <= ALPHA
    plug_in = _per_group_plug_in_p_value(treatment, control)[:, -1] <= ALPHA
    _, z_p = two_proportion_z_test(treatment.total, treatment.decisions, control.total, control.decisions)
    assert always_valid.shape == (500,)
    assert (control.total == 0).any(axis=1).mean() > 0.2  # a quarter see a look where the control has none
    assert always_valid.mean() <= ALPHA, always_valid.mean()
    assert plug_in.mean() > 2 * ALPHA, plug_in.mean()
    assert (z_p <= ALPHA).any(axis=1).mean() > 3 * ALPHA, (z_p <= ALPHA).any(axis=1).mean()
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("lift", [0.3, -0.3])
def test_sparse_holdout_confidence_sequence_covers_a_true_lift_at_every_look(lift: float) -> None:
    treatment, control = _sparse_holdout_experiments(seed=18, experiments=500, lift=lift)
    sequence = _sequence(treatment, control)
    truth = RATE * lift
    coverage = ((sequence.low <= truth) & (truth <= sequence.high)).all(axis=1).mean()
    width = sequence.high - sequence.low
    assert width.shape == (500, LOOKS)
    assert coverage >= 1 - ALPHA, coverage
    # It narrows as data come in, to under 2 points at the end for most experiments.
    assert (width[:, -1] < width[:, 0]).all() and np.median(width[:, -1]) < 0.02, np.median(width[:, -1])


def _final_look(
    seed: int, experiments: int, concentration: float, share: float = HOLDOUT
) -> tuple[ProfileSums, ProfileSums]:
    """One look at the end of a longer A/A experiment (LOOKS batches of decisions at once)."""
    rng = np.random.default_rng(seed)
    size = (experiments, PROFILES)
    activity = rng.pareto(1.5, size) + 1.0
    activity /= activity.mean(axis=1, keepdims=True)
    rates = rng.beta(RATE * concentration, (1 - RATE) * concentration, size)
    control = rng.random(size) < share
    n = rng.poisson(LOOKS * activity).astype(float)
    x = rng.binomial(n.astype(np.int64), rates).astype(float)
    return (
        ProfileSums.of_profiles(n * ~control, x * ~control, axis=1),
        ProfileSums.of_profiles(n * control, x * control, axis=1),
    )


@pytest.mark.parametrize("share", [HOLDOUT, 0.5])
def test_profile_level_inference_keeps_the_z_test_near_alpha_where_decision_level_does_not(
    share: float,
) -> None:
    """Heavy-tailed activity and strongly different profiles (Beta(0.2, 19.8) rates)."""
    treatment, control = _final_look(seed=21, experiments=1_000, concentration=20.0, share=share)
    deff_t, deff_c = design_effects([treatment, control])
    counts = (treatment.total, treatment.decisions, control.total, control.decisions)
    _, clustered = two_proportion_z_test(*counts, deff_t=deff_t, deff_c=deff_c)
    _, independent = two_proportion_z_test(*counts)
    assert np.median(deff_t) > 2  # the correlation is there to be found
    assert (clustered <= ALPHA).mean() <= 0.075, (clustered <= ALPHA).mean()
    assert (independent <= ALPHA).mean() > 0.15, (independent <= ALPHA).mean()
    lift = relative_lift(*counts, deff_t=deff_t, deff_c=deff_c)
    assert 0.9 <= lift.contains(0.0).mean() and (lift.low > -1).all()


def test_katz_lift_interval_is_bounded_defined_and_covers_with_sparse_counts() -> None:
    rng = np.random.default_rng(5)
    n_t, n_c, p_c, p_t = 4_000, 200, 0.01, 0.012
    x_t, x_c = rng.binomial(n_t, p_t, 4_000), rng.binomial(n_c, p_c, 4_000)
    lift = relative_lift(x_t, n_t, x_c, n_c)
    assert (x_c == 0).mean() > 0.1  # a tenth of these holdouts have no conversion at all
    assert np.isfinite(lift.value).all() and np.isfinite(lift.low).all() and np.isfinite(lift.high).all()
    assert (lift.low > -1).all() and (lift.low <= lift.value).all() and (lift.value <= lift.high).all()
    coverage = lift.contains(p_t / p_c - 1).mean()
    assert 0.93 <= coverage <= 0.99, coverage


def test_value_lift_interval_covers_with_correlated_profiles() -> None:
    """Value per decision from profiles with their own conversion rate and order size."""
    rng = np.random.default_rng(8)
    experiments, profiles = 400, 2_000
    size = (experiments, profiles)
    n = rng.poisson(rng.pareto(2.0, size) * 8 + 1).astype(float)
    rates = rng.beta(0.5, 24.5, size)
    control = rng.random(size) < 0.2
    order = rng.lognormal(3.0, 0.5, size) * np.where(control, 1.0, 1.1)  # +10% value per conversion
    x = rng.binomial(n.astype(np.int64), rates)
    value = x * order
    # Per-decision squares of value: each converted decision of a profile carries its order size.
    squares = x * order**2
    t = ProfileSums.of_profiles(n * ~control, value * ~control, squares * ~control, axis=1)
    c = ProfileSums.of_profiles(n * control, value * control, squares * control, axis=1)
    deff_t, deff_c = design_effects([t, c], ddof=1)
    lift = relative_lift_of_means(
        t.mean, t.variance(1), t.decisions, c.mean, c.variance(1), c.decisions, deff_t=deff_t, deff_c=deff_c
    )
    naive = relative_lift_of_means(t.mean, t.variance(1), t.decisions, c.mean, c.variance(1), c.decisions)
    assert np.median(deff_t) > 2
    assert (lift.low > -1).all()
    assert lift.contains(0.1).mean() >= 0.93, lift.contains(0.1).mean()
    assert naive.contains(0.1).mean() < 0.85, naive.contains(0.1).mean()
