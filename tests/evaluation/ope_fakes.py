"""A pure-Python stand-in for `decision_engine.Bandit` (context-free epsilon-greedy), for the
tests that check what the bandit was shown and when."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


class FakeBandit:
    """Context-free epsilon-greedy in pure Python, recording what it was shown."""

    def __init__(self, n_arms: int = 4, epsilon: float = 0.2) -> None:
        self.epsilon = epsilon
        self.pulls = np.zeros(n_arms)
        self.rewards = np.zeros(n_arms)
        self.seen_before_scoring: list[int] = []

    def action_probabilities(
        self, X: npt.NDArray[Any], eligible: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float64]:
        assert X.dtype == np.float32 and X.flags.c_contiguous
        self.seen_before_scoring.append(int(self.pulls.sum()))
        means = self.rewards / np.maximum(self.pulls, 1)
        p = np.full(len(means), self.epsilon / len(means))
        p[int(np.argmax(means))] += 1 - self.epsilon
        return np.tile(p, (X.shape[0], 1))

    def update(
        self, X: npt.NDArray[Any], arms: npt.NDArray[np.int64], rewards: npt.NDArray[np.float64]
    ) -> None:
        np.add.at(self.pulls, arms, 1.0)
        np.add.at(self.rewards, arms, rewards)
