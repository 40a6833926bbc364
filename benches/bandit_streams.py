"""Supervised-to-bandit streams: each class of a scikit-learn dataset is an arm, and choosing
the row's label earns reward 1, any other arm 0. Only datasets shipped inside scikit-learn are
used (nothing is downloaded). A learner sees a chunk of rows, chooses an arm for each, and only
then learns the rewards of its own choices, so the mean reward over the stream is progressive
validation: every reward comes from a decision made before its row was learned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sklearn import datasets

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

# Passes over each dataset; every pass is a fresh permutation. The small sets need more passes
# for the learners to get past their cold start (wine 178 rows, iris 150).
EPOCHS = {"digits": 3, "breast_cancer": 3, "wine": 10, "iris": 10}
_LOADERS: dict[str, Callable[..., object]] = {
    "digits": datasets.load_digits,
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "iris": datasets.load_iris,
}


@dataclass(frozen=True)
class Stream:
    name: str
    features: Floats  # (rows, n_features), standardised, then a constant 1 column
    labels: Ints  # (rows,), the rewarded arm of each row
    epochs: int

    @property
    def n_arms(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def order(self, seed: int, epochs: int | None = None) -> Ints:
        """Row indices of the stream: `epochs` permutations one after the other."""
        rng = np.random.default_rng(seed)
        n = len(self.labels)
        return np.concatenate([rng.permutation(n) for _ in range(epochs or self.epochs)])


def load_stream(name: str) -> Stream:
    x, y = _LOADERS[name](return_X_y=True)  # type: ignore[misc]
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    # Over the whole dataset: these are label-free feature statistics a deployment would know.
    # Constant columns (digits' border pixels) stay 0 instead of dividing by 0.
    standardised = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    # A constant column gives every linear learner a per-arm intercept: contextualbandits fits
    # one itself and VW's `a=k` feature is one, but ours and MABWiser's LinUCB/LinTS have none.
    features = np.hstack([standardised, np.ones((len(x), 1))]).astype(np.float32)
    return Stream(name, np.ascontiguousarray(features), np.asarray(y, dtype=np.int64), EPOCHS[name])


class Learner(Protocol):
    def choose(self, features: Floats) -> tuple[Ints, npt.NDArray[np.float64]]:
        """(arms, probability of each chosen arm) for a chunk of rows."""
        ...

    def learn(
        self,
        features: Floats,
        arms: Ints,
        rewards: npt.NDArray[np.float64],
        probabilities: npt.NDArray[np.float64],
    ) -> None: ...


def progressive_reward(learner: Learner, stream: Stream, order: Ints, chunk: int) -> float:
    """Mean reward of the learner's choices over the stream, learning after each chunk."""
    earned = 0.0
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        features = stream.features[rows]
        arms, probabilities = learner.choose(features)
        rewards = (arms == stream.labels[rows]).astype(np.float64)
        earned += rewards.sum()
        learner.learn(features, arms, rewards, probabilities)
    return earned / len(order)
