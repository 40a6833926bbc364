"""Progressive evaluation with the real `decision_engine.Bandit`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from decision_engine.evaluation import (
    engine_bandit,
    evaluate_on_obd,
    evaluate_policy,
    load_obd,
    on_policy,
    progressive_probabilities,
)

from tests.evaluation.ope_synthetic import N_ACTIONS, N_FEATURES, sample

OBD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "obd" / "random" / "all" / "all.csv"


@pytest.mark.parametrize(
    "policy",
    [{"type": "epsilon_greedy", "epsilon": 0.1}, {"type": "lin_ucb", "alpha": 0.5}, {"type": "thompson"}],
)
def test_estimates_cover_the_value_of_the_policies_the_bandit_went_through(policy: dict[str, object]) -> None:
    covered = []
    for seed in range(10):
        problem = sample(seed)
        pi = progressive_probabilities(engine_bandit(policy, N_ACTIONS, N_FEATURES, seed), problem.data, 200)
        assert np.allclose(pi.sum(axis=1), 1.0)
        truth = float((pi * problem.q).sum(axis=1).mean())
        results = evaluate_policy(
            lambda s=seed: engine_bandit(policy, N_ACTIONS, N_FEATURES, s),
            problem.data,
            ["ips", "dr"],
            chunk_size=200,
        )
        covered += [r.lower <= truth <= r.upper for r in results.values()]
    assert np.mean(covered) >= 0.8


def test_a_learning_policy_beats_uniform_random_on_the_synthetic_problem() -> None:
    problem = sample(0, n=4000)
    uniform = float(problem.q.mean(axis=1).mean())
    results = evaluate_policy(
        lambda: engine_bandit({"type": "lin_ucb"}, N_ACTIONS, N_FEATURES),
        problem.data,
        ["dr"],
        chunk_size=200,
    )
    assert results["dr"].lower > uniform


@pytest.mark.skipif(not OBD.exists(), reason=f"no Open Bandit Dataset sample at {OBD}")
def test_trained_on_the_first_half_of_the_random_obd_log() -> None:
    data = load_obd(OBD)
    results = evaluate_on_obd({"type": "epsilon_greedy", "epsilon": 0.1}, data, train_fraction=0.5)
    assert results["ips"].n == 5000
    random_rate = on_policy(data).value  # the uniform random logging policy's: 0.0038
    for e in results.values():
        assert e.lower <= e.value <= e.upper
    # The four estimators agree: their intervals share a click rate, and a plausible one (OBD's
    # logging policies click at 0.3-0.5%), not above twice the uniform random policy's.
    common_low = max(e.lower for e in results.values())
    common_high = min(e.upper for e in results.values())
    assert common_low <= common_high, results
    assert common_high > 0 and common_low < 2 * random_rate, results
