"""Cross-fitted reward models q(x, a) for the doubly robust estimator.

The default model is one ridge regression per action on the design ``[X, one-hot position]``
(the intercept is not penalised), fitted with K-fold cross-fitting: each row's prediction comes
from a model that never saw that row, so the DR correction term stays unbiased. Without
features or positions it is the per-action mean reward (the pooled mean for an action a fold
never logged).
"""

from __future__ import annotations

import numpy as np

from decision_engine.errors import InvalidInputError
from decision_engine.evaluation.data import FloatArray, LoggedBandit


def design_matrix(data: LoggedBandit) -> FloatArray:
    """The reward model's inputs: ``X`` then a one-hot of ``position`` (either may be absent)."""
    parts = [] if data.X is None else [data.X]
    if data.position is not None:
        slots = int(data.position.max()) + 1
        parts.append(np.eye(slots)[data.position])
    return np.hstack(parts) if parts else np.zeros((data.n, 0))


def _ridge_predict(
    Z: FloatArray, y: FloatArray, Z_new: FloatArray, ridge: float, fallback: float
) -> FloatArray:
    if y.shape[0] == 0:
        return np.full(Z_new.shape[0], fallback)
    mean_z, mean_y = Z.mean(axis=0), float(y.mean())
    if Z.shape[1] == 0:
        return np.full(Z_new.shape[0], mean_y)
    centred = Z - mean_z
    gram = centred.T @ centred + ridge * np.eye(Z.shape[1])
    coef = np.linalg.solve(gram, centred.T @ (y - mean_y))
    prediction: FloatArray = mean_y + (Z_new - mean_z) @ coef
    return prediction


def cross_fit_rewards(data: LoggedBandit, folds: int = 2, ridge: float = 1.0, seed: int = 0) -> FloatArray:
    """Out-of-fold predictions ``q[i, a]`` of the reward of each action in each row, shape (n, n_actions)."""
    if folds < 2:
        raise InvalidInputError(f"folds must be at least 2 for cross-fitting, got {folds}")
    if ridge <= 0:
        raise InvalidInputError(f"ridge must be positive, got {ridge}")
    if data.n < folds:
        raise InvalidInputError(f"need at least {folds} rows to cross-fit over {folds} folds, got {data.n}")
    Z = design_matrix(data)
    fold = np.random.default_rng(seed).permutation(data.n) % folds
    q = np.empty((data.n, data.n_actions))
    for k in range(folds):
        train, held = fold != k, fold == k
        pooled = float(data.reward[train].mean())
        for a in range(data.n_actions):
            rows = train & (data.action == a)
            q[held, a] = _ridge_predict(Z[rows], data.reward[rows], Z[held], ridge, pooled)
    return q
