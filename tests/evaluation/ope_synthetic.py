"""A synthetic contextual bandit whose target-policy value is known exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from decision_engine.evaluation import LoggedBandit

N_ACTIONS = 4
N_FEATURES = 3
THETA = np.array([[0.25, 0.10, -0.10], [-0.15, 0.25, 0.05], [0.10, -0.20, 0.15], [0.0, 0.1, 0.2]])
BASE = np.array([0.50, 0.45, 0.50, 0.55])


def contexts(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    return rng.uniform(-1.0, 1.0, size=(n, N_FEATURES))


def mean_reward(X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """True click probability of each action, linear in the context (so ridge fits it well)."""
    return np.asarray(BASE + X @ THETA.T)


def softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def logging_policy(X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Favours action 0 and depends on the context; every action keeps some probability."""
    return softmax(np.column_stack([1.0 + X[:, 0], X[:, 1], -X[:, 2], 0.5 * X[:, 0]]))


def target_policy(X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Leans towards the truly better actions: a different policy from the logging one."""
    return softmax(8.0 * mean_reward(X))


@dataclass(frozen=True)
class Problem:
    data: LoggedBandit
    pi: npt.NDArray[np.float64]
    q: npt.NDArray[np.float64]  # the true mean rewards: a perfect reward model


def sample(seed: int, n: int = 2000, uniform: bool = False) -> Problem:
    rng = np.random.default_rng(seed)
    X = contexts(rng, n)
    logging = np.full((n, N_ACTIONS), 1.0 / N_ACTIONS) if uniform else logging_policy(X)
    action = (rng.random(n)[:, None] > np.cumsum(logging, axis=1)).sum(axis=1)
    mu = mean_reward(X)
    reward = (rng.random(n) < mu[np.arange(n), action]).astype(np.float64)
    data = LoggedBandit(
        reward=reward,
        action=action,
        propensity=logging[np.arange(n), action],
        n_actions=N_ACTIONS,
        X=X,
        time=np.arange(n, dtype=np.float64),
    )
    return Problem(data, target_policy(X), mu)


def true_value(policy: str = "target") -> float:
    """The target's value over the context distribution (1e6 contexts: error ~1e-5)."""
    X = contexts(np.random.default_rng(12345), 1_000_000)
    pi = target_policy(X) if policy == "target" else np.eye(N_ACTIONS)[greedy_action(X)]
    return float((pi * mean_reward(X)).sum(axis=1).mean())


def greedy_action(X: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.asarray(np.argmax(mean_reward(X), axis=1), dtype=np.int64)
