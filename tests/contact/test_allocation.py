"""Batch allocation under budgets versus the exact optimum from scipy's MILP solver."""

import numpy as np
import pytest
from decision_engine import _core
from scipy.optimize import Bounds, LinearConstraint, milp

from tests.clock import NOW_SECONDS


def optimum(scores: np.ndarray, capacity: np.ndarray, slots: int) -> float:
    """max sum s_ij x_ij  s.t. sum_j x_ij <= slots, sum_i x_ij <= cap_j, x binary, x_ij = 0 off-candidates."""
    n, m = scores.shape
    s = np.where(scores > 0, scores, 0.0).ravel()
    rows = np.kron(np.eye(n), np.ones(m))
    cols = np.kron(np.ones(n), np.eye(m))
    constraints = [LinearConstraint(rows, 0, slots), LinearConstraint(cols, 0, capacity)]
    upper = (scores.ravel() > 0).astype(float)
    result = milp(-s, constraints=constraints, integrality=np.ones_like(s), bounds=Bounds(0, upper))
    assert result.success
    return -result.fun


def achieved(scores: np.ndarray, chosen: np.ndarray) -> float:
    rows = np.repeat(np.arange(len(scores))[:, None], chosen.shape[1], axis=1)
    picked = chosen >= 0
    return float(scores[rows[picked], chosen[picked]].sum())


def instance(seed: int, n: int = 60, m: int = 6):
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 1.0, m)  # some offers are better for everyone: they compete for budget
    scores = base * rng.lognormal(0.0, 0.5, (n, m))
    scores[rng.random((n, m)) < 0.3] = np.nan  # not eligible
    capacity = rng.integers(1, n // 3, m)
    return scores, capacity


@pytest.mark.parametrize("slots", [1, 2])
def test_allocation_reaches_the_exact_optimum_closely(slots):
    ratios, greedy_ratios = [], []
    for seed in range(25):
        scores, capacity = instance(seed)
        best = optimum(np.nan_to_num(scores), capacity, slots)
        chosen = _core.allocate(scores, capacity.tolist(), slots, "price")
        greedy = _core.allocate(scores, capacity.tolist(), slots, "greedy")
        for picks in (chosen, greedy):
            counts = np.bincount(picks[picks >= 0], minlength=len(capacity))
            assert np.all(counts <= capacity)
            assert all(len(set(r[r >= 0])) == (r >= 0).sum() for r in picks)
        ratios.append(achieved(np.nan_to_num(scores), chosen) / best)
        greedy_ratios.append(achieved(np.nan_to_num(scores), greedy) / best)
    mean, worst, greedy_mean = np.mean(ratios), min(ratios), np.mean(greedy_ratios)
    print(f"slots={slots}: price allocation {mean:.4f} (min {worst:.4f}), greedy {greedy_mean:.4f}")
    assert np.mean(ratios) >= 0.98
    assert np.mean(ratios) > np.mean(greedy_ratios)


def test_engine_batch_allocation_respects_budgets(make_contact_engine):
    engine = make_contact_engine(budget=25)
    profiles = np.full((500, 1), 30.0, np.float32)
    batch = engine.decide_batch("hero", profiles, now=NOW_SECONDS, allocate_budgets=True)
    loan = engine.offer_ids.index("loan")
    assert (batch.offers == loan).sum() == 25
    assert engine.budget_usage("loan", now=NOW_SECONDS) == (25, 25)
    assert np.all(batch.propensities[batch.offers >= 0] == 1.0)
    cards = np.isin(batch.offers, [engine.offer_ids.index("card"), engine.offer_ids.index("card_plus")])
    assert cards.sum(axis=1).max() <= 1, "one offer per exclusion group"
