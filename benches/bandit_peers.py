"""Our Bandit and its peers (Vowpal Wabbit, MABWiser, contextualbandits) behind one small
interface, `choose` a chunk of rows then `learn` the rewards of those choices, plus the Vowpal
Wabbit text format both benchmarks build their examples with."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import vowpalwabbit
from contextualbandits.online import LinUCB
from mabwiser.mab import MAB

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Rewards = npt.NDArray[np.float64]


def vw_shared_line(row: Floats) -> str:
    """The context as VW's shared example, namespace `s`, feature i with value row[i]."""
    return "shared |s " + " ".join(f"{i}:{value:.6g}" for i, value in enumerate(row) if value != 0)


def vw_action_lines(n_arms: int) -> list[str]:
    """One action example per arm in namespace `a`; with `-q sa` each arm gets its own weights
    for every context feature, which makes the model a per-arm linear one like LinUCB's."""
    return [f"|a a={k}" for k in range(n_arms)]


def vw_example(row: Floats, actions: list[str], label: tuple[int, float, float] | None = None) -> list[str]:
    """Multi-line ADF example; `label` (arm, cost, probability) marks the arm that was played."""
    lines = [vw_shared_line(row), *actions]
    if label is not None:
        arm, cost, probability = label
        lines[1 + arm] = f"0:{cost:.6g}:{probability:.6g} {actions[arm]}"
    return lines


def vw_workspace(options: str, seed: int) -> vowpalwabbit.Workspace:
    return vowpalwabbit.Workspace(f"--cb_explore_adf {options} -q sa --quiet --random_seed {seed}")


class OurBandit:
    def __init__(self, policy: dict[str, Any], n_arms: int, n_features: int, seed: int) -> None:
        from decision_engine import Bandit  # imported late: the peers run without the extension

        self.bandit = Bandit(policy, n_arms, n_features, seed=seed)

    def choose(self, features: Floats) -> tuple[Ints, Rewards]:
        choices, propensities = self.bandit.select(features)
        return choices[:, 0], propensities[:, 0]

    def learn(self, features: Floats, arms: Ints, rewards: Rewards, probabilities: Rewards) -> None:
        self.bandit.update(features, arms, rewards)


class VowpalWabbit:
    """`--cb_explore_adf`: VW returns a pmf over the arms; we sample it with our own seeded
    generator and learn cost = -reward with the probability the arm had."""

    def __init__(self, options: str, n_arms: int, seed: int) -> None:
        self.vw = vw_workspace(options, seed)
        self.actions = vw_action_lines(n_arms)
        self.rng = np.random.default_rng(seed)

    def choose(self, features: Floats) -> tuple[Ints, Rewards]:
        arms = np.empty(len(features), dtype=np.int64)
        probabilities = np.empty(len(features))
        for i, row in enumerate(features):
            pmf = np.asarray(self.vw.predict(vw_example(row, self.actions)), dtype=np.float64)
            pmf /= pmf.sum()  # float32 pmf from VW: renormalise for numpy's check
            arms[i] = self.rng.choice(len(pmf), p=pmf)
            probabilities[i] = pmf[arms[i]]
        return arms, probabilities

    def learn(self, features: Floats, arms: Ints, rewards: Rewards, probabilities: Rewards) -> None:
        for row, arm, reward, probability in zip(features, arms, rewards, probabilities, strict=True):
            self.vw.learn(vw_example(row, self.actions, (int(arm), -float(reward), float(probability))))


class Mabwiser:
    """MABWiser refuses to predict before its first `fit`: the first chunk is chosen uniformly."""

    def __init__(self, policy: Any, n_arms: int, seed: int) -> None:
        self.mab = MAB(list(range(n_arms)), policy, seed=seed)
        self.n_arms = n_arms
        self.rng = np.random.default_rng(seed)
        self.fitted = False

    def choose(self, features: Floats) -> tuple[Ints, Rewards]:
        if not self.fitted:
            arms = self.rng.integers(0, self.n_arms, len(features))
            return arms, np.full(len(features), 1 / self.n_arms)
        # one row gives a bare arm, several a list; MABWiser reports no probabilities
        arms = np.atleast_1d(np.asarray(self.mab.predict(features), dtype=np.int64))
        return arms, np.full(len(features), np.nan)

    def learn(self, features: Floats, arms: Ints, rewards: Rewards, probabilities: Rewards) -> None:
        if self.fitted:
            self.mab.partial_fit(arms, rewards, features)
        else:
            self.mab.fit(arms, rewards, features)
            self.fitted = True


class ContextualBanditsLinUCB:
    def __init__(self, alpha: float, n_arms: int, seed: int) -> None:
        self.model = LinUCB(n_arms, alpha=alpha, random_state=seed + 1)  # it asserts seed > 0

    def choose(self, features: Floats) -> tuple[Ints, Rewards]:
        return self.model.predict(features).astype(np.int64), np.full(len(features), np.nan)

    def learn(self, features: Floats, arms: Ints, rewards: Rewards, probabilities: Rewards) -> None:
        self.model.partial_fit(features, arms, rewards)
