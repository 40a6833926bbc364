"""Bad input gets an InvalidInputError that says what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from decision_engine.errors import InvalidInputError
from decision_engine.evaluation import LoggedBandit, Options, dr, estimate, ips

GOOD: dict[str, Any] = {
    "reward": [1.0, 0.0, 1.0],
    "action": [0, 1, 2],
    "propensity": [0.5, 0.25, 1.0],
    "n_actions": 3,
}
UNIFORM = np.full((3, 3), 1 / 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"propensity": [0.5, 0.0, 1.0]}, r"propensity must be in \(0, 1\].*row 1"),
        ({"propensity": [0.5, 1.2, 1.0]}, r"propensity must be in \(0, 1\].*row 1"),
        ({"propensity": [0.5, np.nan, 1.0]}, r"propensity must be in \(0, 1\]"),
        ({"propensity": [0.5, 0.5]}, "propensity must have 3 rows"),
        ({"action": [0, 3, 1]}, r"action must be in 0..2 \(n_actions=3\); row 1 has 3"),
        ({"action": [0.0, 1.5, 1.0]}, "action must hold integers"),
        ({"reward": [1.0, np.inf, 0.0]}, "reward must be finite"),
        ({"reward": [], "action": [], "propensity": []}, "the log is empty"),
        ({"X": np.zeros((2, 4))}, r"X must have shape \(3, n_features\), got \(2, 4\)"),
        ({"mask": np.ones((3, 2), bool)}, r"mask must have shape \(3, 3\)"),
        ({"mask": np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], bool)}, "row 1: the logged action 1 is not"),
        ({"action_ids": ("a", "b")}, "action_ids must name 3 actions"),
    ],
)
def test_bad_logs_are_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        LoggedBandit(**{**GOOD, **change})


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (np.full((3, 2), 0.5), r"\(n, n_actions\) = \(3, 3\) or be one action per row, got shape \(3, 2\)"),
        (np.full((3, 3), 0.5), "must sum to 1 per row; row 0 sums to 1.5"),
        (np.array([[1.5, -0.5, 0.0]] * 3), "non-negative"),
        (np.array([0, 1, 5]), "target actions must be in 0..2"),
        (np.array([0, 1]), "target actions must have 3 rows"),
    ],
)
def test_bad_targets_are_rejected(target: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ips(LoggedBandit(**GOOD), target)


def test_target_mass_on_ineligible_actions_is_rejected() -> None:
    data = LoggedBandit(**GOOD, mask=np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1]], bool))
    with pytest.raises(InvalidInputError, match="ineligible actions"):
        ips(data, UNIFORM)
    ok = np.array([[0.5, 0, 0.5], [0, 0.5, 0.5], [1 / 3] * 3])
    assert ips(data, ok).n == 3


def test_bad_options_and_estimators() -> None:
    data = LoggedBandit(**GOOD)
    with pytest.raises(InvalidInputError, match="unknown estimators"):
        estimate(data, UNIFORM, ["ips", "magic"])
    with pytest.raises(InvalidInputError, match="max_weight must be positive"):
        ips(data, UNIFORM, Options(max_weight=0))
    with pytest.raises(InvalidInputError, match=r"level must be in \(0, 1\)"):
        Options(level=1.5)
    with pytest.raises(InvalidInputError, match=r"q must have shape \(3, 3\)"):
        dr(data, UNIFORM, q=np.zeros((3, 2)))


def test_deterministic_target_equals_its_one_hot() -> None:
    data = LoggedBandit(**GOOD)
    assert ips(data, np.array([0, 0, 2])) == ips(data, np.eye(3)[[0, 0, 2]])


def test_take_and_time_order() -> None:
    data = LoggedBandit(**GOOD, time=[3.0, 1.0, 2.0], position=[0, 1, 0])
    assert data.time_order().tolist() == [1, 2, 0]
    part = data.take(data.time_order()[:2])
    assert part.n == 2 and part.action.tolist() == [1, 2] and part.position is not None
