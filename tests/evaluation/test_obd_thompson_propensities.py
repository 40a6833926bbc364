"""Open Bandit Dataset (issue 17): `thompson` learned from a real log at click rates near 0.4%
reports, for each item it picks, the probability its sampler had of picking it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from decision_engine import Bandit
from decision_engine.evaluation import load_obd

from tests.policies.frequencies import assert_matches_frequencies, reported_per_arm

OBD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "obd"
pytestmark = pytest.mark.skipif(
    not (OBD / "random" / "all" / "all.csv").exists(),
    reason=f"the Open Bandit Dataset sample is not at {OBD} (random/all/all.csv, bts/all/all.csv)",
)
ROWS = 100_000


@pytest.mark.parametrize("logging_policy", ["random", "bts"])
@pytest.mark.parametrize("kind", ["thompson", "gaussian_thompson"])
def test_propensities_learned_from_an_obd_log_are_the_choice_frequencies(
    logging_policy: str, kind: str
) -> None:
    data = load_obd(OBD / logging_policy / "all" / "all.csv")
    assert 0.002 < data.reward.mean() < 0.006 and data.n_actions == 80
    bandit = Bandit({"type": kind}, data.n_actions, 0, seed=1)
    bandit.update(np.zeros((data.n, 0)), data.action, data.reward)  # every impression, any position
    assert bandit.state()["pulls"].sum() == data.n
    choices, propensities = bandit.select(np.zeros((ROWS, 0)))
    probabilities = bandit.action_probabilities(np.zeros((1, 0)))[0]
    assert_matches_frequencies(choices[:, 0], propensities[:, 0], probabilities)
    # The items picked most, one by one (the "top item reported at 0.127, chosen 10.4%").
    frequency = np.bincount(choices[:, 0], minlength=data.n_actions) / ROWS
    reported = reported_per_arm(choices[:, 0], propensities[:, 0], data.n_actions)
    for item in np.argsort(-frequency)[:5]:
        f = frequency[item]
        assert abs(reported[item] - f) <= max(0.005, 0.05 * f) + 3 * np.sqrt(f * (1 - f) / ROWS), item
