"""Peers set up on the engine's learned state."""

from __future__ import annotations

import numpy as np
from decision_engine import Engine
from mabwiser.mab import MAB, LearningPolicy
from workload import posteriors


def fitted_mabwiser(engine: Engine, placement: str) -> MAB:
    """MABWiser Thompson sampling on the engine's posteriors: it keeps Beta(1 + wins, 1 + losses)
    per arm, the engine's Beta(1, 1) prior updated by the 0/1 rewards of the warm-up."""
    alpha, beta = posteriors(engine, placement)
    wins, losses = (alpha - 1).astype(np.int64), (beta - 1).astype(np.int64)
    assert np.array_equal(wins, alpha - 1) and np.array_equal(losses, beta - 1), "rewards were 0/1"
    arms = engine.offer_ids
    decisions = np.repeat(np.array(arms), wins + losses)
    rewards = np.concatenate([np.r_[np.ones(w), np.zeros(lo)] for w, lo in zip(wins, losses, strict=True)])
    mab = MAB(arms, LearningPolicy.ThompsonSampling(), seed=3)
    mab.fit(decisions, rewards)
    assert [mab._imp.arm_to_success_count[a] for a in arms] == alpha.tolist()
    assert [mab._imp.arm_to_fail_count[a] for a in arms] == beta.tolist()
    return mab
