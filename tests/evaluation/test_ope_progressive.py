"""Progressive (online replay) evaluation of a learning policy."""

from __future__ import annotations

import numpy as np
import pytest
from decision_engine.errors import InvalidInputError
from decision_engine.evaluation import (
    estimate,
    evaluate_policy,
    evaluate_trained,
    progressive_probabilities,
)

from tests.evaluation.ope_fakes import FakeBandit
from tests.evaluation.ope_synthetic import N_ACTIONS, sample


def test_each_chunk_is_scored_before_the_bandit_learns_from_it() -> None:
    problem = sample(0, n=2000)
    bandit = FakeBandit()
    pi = progressive_probabilities(bandit, problem.data, chunk_size=500)
    assert bandit.seen_before_scoring == [0, 500, 1000, 1500]
    assert bandit.pulls.sum() == 2000
    assert np.allclose(pi[:500], [0.85, 0.05, 0.05, 0.05])  # nothing learnt: a tie, arm 0
    first = problem.data.take(np.arange(1500))  # what the bandit had seen when scoring the last chunk
    means = [first.reward[first.action == a].mean() for a in range(N_ACTIONS)]
    assert (np.argmax(pi[1500:], axis=1) == np.argmax(means)).all()


def test_rows_are_walked_in_time_order_and_returned_in_row_order() -> None:
    problem = sample(1, n=1000)
    shuffled = np.random.default_rng(0).permutation(problem.data.n)
    data = problem.data.take(shuffled)  # times out of row order
    in_order = progressive_probabilities(FakeBandit(), problem.data, chunk_size=100)
    walked = progressive_probabilities(FakeBandit(), data, chunk_size=100)
    assert np.allclose(walked, in_order[shuffled])


def test_estimates_cover_the_learning_policys_true_value() -> None:
    covered = []
    for seed in range(40):
        problem = sample(seed)
        pi = progressive_probabilities(FakeBandit(), problem.data, chunk_size=250)
        truth = float((pi * problem.q).sum(axis=1).mean())  # known mean reward of each snapshot
        results = evaluate_policy(FakeBandit, problem.data, ["ips", "dr"], chunk_size=250)
        assert results["dr"].value == estimate(problem.data, pi, ["dr"])["dr"].value
        covered.append([r.lower <= truth <= r.upper for r in results.values()])
    assert np.mean(covered) >= 0.85


def test_evaluate_trained_learns_first_then_scores_the_rest() -> None:
    problem = sample(2, n=2000)
    made: list[FakeBandit] = []

    def factory() -> FakeBandit:
        made.append(FakeBandit(epsilon=0.0))
        return made[-1]

    results = evaluate_trained(factory, problem.data, train_fraction=0.75, chunk_size=250)
    assert len(made) == 1 and made[0].seen_before_scoring == [1500, 1750]
    assert results["ips"].n == 500
    with pytest.raises(InvalidInputError, match=r"train_fraction must be in \(0, 1\)"):
        evaluate_trained(factory, problem.data, train_fraction=1.0)


def test_a_bandit_with_the_wrong_number_of_arms_is_reported() -> None:
    problem = sample(3, n=100)
    with pytest.raises(InvalidInputError, match="does it have n_arms = 4"):
        evaluate_policy(lambda: FakeBandit(n_arms=3), problem.data)
