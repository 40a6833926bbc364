"""The estimators on a synthetic problem with a known value: bias, coverage, variance."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
from decision_engine.evaluation import (
    LoggedBandit,
    Options,
    dr,
    estimate,
    ips,
    on_policy,
    replay,
    snips,
)
from scipy.stats import norm

from tests.evaluation.ope_synthetic import greedy_action, sample, true_value

SEEDS = range(200)


@pytest.fixture(scope="module")
def runs() -> dict[str, np.ndarray]:
    """Value, lower, upper of each estimator over 200 independent logs."""
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for seed in SEEDS:
        problem = sample(seed)
        for name, e in estimate(problem.data, problem.pi).items():
            rows.setdefault(name, []).append((e.value, e.lower, e.upper))
        e = dr(problem.data, problem.pi, q=problem.q)
        rows.setdefault("dr_true_model", []).append((e.value, e.lower, e.upper))
    return {name: np.array(values) for name, values in rows.items()}


@pytest.mark.parametrize("name", ["ips", "snips", "dr", "dr_true_model"])
def test_unbiased_over_many_logs(runs: dict[str, np.ndarray], name: str) -> None:
    values = runs[name][:, 0]
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - true_value()) < 3.5 * se + 1e-4


@pytest.mark.parametrize("name", ["ips", "snips", "dr"])
def test_intervals_cover_about_95_percent(runs: dict[str, np.ndarray], name: str) -> None:
    truth = true_value()
    covered = (runs[name][:, 1] <= truth) & (truth <= runs[name][:, 2])
    assert 0.89 <= covered.mean() <= 0.995


def test_dr_has_lower_variance_than_ips_with_a_good_model(runs: dict[str, np.ndarray]) -> None:
    ips_sd = runs["ips"][:, 0].std()
    assert runs["dr"][:, 0].std() < 0.8 * ips_sd
    assert runs["dr_true_model"][:, 0].std() < 0.8 * ips_sd
    # and narrower intervals, log by log
    assert np.mean(runs["dr"][:, 2] - runs["dr"][:, 1]) < np.mean(runs["ips"][:, 2] - runs["ips"][:, 1])


def test_replay_is_unbiased_under_uniform_logging_and_keeps_the_matching_rows() -> None:
    truth = true_value("greedy")
    values, kept = [], []
    for seed in range(100):
        problem = sample(seed, uniform=True)
        target = greedy_action(problem.data.X)  # type: ignore[arg-type]
        e = replay(problem.data, target)
        assert e.n == int((target == problem.data.action).sum())
        values.append(e.value)
        kept.append(e.n)
    assert abs(np.mean(kept) - 2000 / 4) < 10
    assert abs(np.mean(values) - truth) < 3.5 * np.std(values) / 10


def test_replay_samples_a_probabilistic_target_with_its_seed() -> None:
    problem = sample(1, uniform=True)
    first = replay(problem.data, problem.pi, Options(seed=3))
    assert first == replay(problem.data, problem.pi, Options(seed=3))
    assert 400 < first.n < 600
    assert first.lower <= first.value <= first.upper


def test_replay_interval_is_that_of_the_kept_rows_alone() -> None:
    """Non-binary rewards take the delta-method interval: with only the k kept rows in the
    estimate it is the mean's, z * sd(ddof=1) / sqrt(k), not corrected with all n rows."""
    rng = np.random.default_rng(4)
    n = 40
    action = rng.integers(0, 4, n)
    data = LoggedBandit(
        reward=rng.normal(1.0, 0.5, n), action=action, propensity=np.full(n, 0.25), n_actions=4
    )
    target = np.zeros(n, dtype=np.int64)
    e = replay(data, target)
    kept = data.reward[action == 0]
    assert e.n == kept.size and 3 <= kept.size <= n // 2
    half = float(norm.ppf(0.975)) * kept.std(ddof=1) / np.sqrt(kept.size)
    assert e.value == pytest.approx(kept.mean())
    assert (e.lower, e.upper) == pytest.approx((kept.mean() - half, kept.mean() + half), rel=1e-12)
    boot = replay(data, target, Options(interval="bootstrap", n_bootstrap=200))
    assert kept.min() <= boot.lower < boot.value < boot.upper <= kept.max()


def test_snips_is_invariant_to_scaling_the_weights() -> None:
    problem = sample(7)
    scaled = replace(problem.data, propensity=problem.data.propensity / 3.0)
    assert snips(scaled, problem.pi).value == pytest.approx(snips(problem.data, problem.pi).value)
    assert ips(scaled, problem.pi).value == pytest.approx(3.0 * ips(problem.data, problem.pi).value)


def test_on_policy_target_gives_the_mean_reward_and_full_ess() -> None:
    problem = sample(3)
    # the logging policy itself has weights 1 on every row: IPS is the plain mean
    from tests.evaluation.ope_synthetic import logging_policy

    pi = logging_policy(problem.data.X)  # type: ignore[arg-type]
    e = ips(problem.data, pi)
    assert e.value == pytest.approx(problem.data.reward.mean())
    assert e.ess == pytest.approx(problem.data.n)


def test_clipping_bounds_the_weights() -> None:
    problem = sample(5)
    clipped = ips(problem.data, problem.pi, Options(max_weight=1.5))
    plain = ips(problem.data, problem.pi)
    assert clipped.ess is not None and plain.ess is not None and clipped.ess > plain.ess
    assert clipped.value <= plain.value


def test_bootstrap_interval_agrees_with_the_normal_one() -> None:
    problem = sample(11)
    normal = ips(problem.data, problem.pi)
    boot = ips(problem.data, problem.pi, Options(interval="bootstrap", n_bootstrap=400, seed=1))
    assert boot.value == normal.value
    assert boot.lower == pytest.approx(normal.lower, abs=0.01)
    assert boot.upper == pytest.approx(normal.upper, abs=0.01)
    snips_boot = snips(problem.data, problem.pi, Options(interval="bootstrap", n_bootstrap=200))
    assert snips_boot.lower < snips_boot.value < snips_boot.upper


def test_bootstrap_memory_does_not_grow_with_the_number_of_draws_times_rows() -> None:
    """One million rows: 16 resamples drawn as one 16 x 1e6 matrix would take 128 MB."""
    n = 1_000_000
    data = LoggedBandit(
        reward=(np.arange(n) % 7 == 0).astype(np.float64),
        action=np.zeros(n, dtype=np.int64),
        propensity=np.ones(n),
        n_actions=1,
    )
    tracemalloc.start()
    try:
        e = on_policy(data, Options(interval="bootstrap", n_bootstrap=16))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20  # a few arrays of n values (8 MB each), not 16 of them
    assert e.lower < e.value < e.upper and e.upper - e.lower < 0.002
