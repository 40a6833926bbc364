"""Simulated experiments: intervals cover at their nominal rate, peeking stays valid with mSPRT.

All simulations are vectorised across experiments and seeded, so the figures are fixed.
"""

from __future__ import annotations

import numpy as np
from decision_engine.experiments.sequential import default_mixture_sd, msprt_difference_of_proportions
from decision_engine.experiments.stats import (
    difference_of_proportions,
    relative_lift,
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
