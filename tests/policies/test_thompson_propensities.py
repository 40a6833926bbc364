"""Thompson propensities are the sampler's probabilities (issue 17).

For `thompson` and `gaussian_thompson` states over a grid (response rates near 0.1% and 0.5%,
one arm with 100x the pulls of the others or pulls spread over three decades, 2 to 500 arms),
the propensity `Bandit.select` reports for each pick is compared with how often the sampler
made that pick over many rows: within max(0.005, 5% of the frequency) plus sampling noise for
every arm chosen (the issue's bound), and within 5% relative plus noise for every arm expected
often enough to measure (the bound that catches an arm reported 74x too low at 0.1%).
`action_probabilities` must give the same numbers; a slot after the first is a fresh draw among
the offers left, its propensity the probability given the picks above.
"""

from __future__ import annotations

import numpy as np
import pytest
from decision_engine import Bandit, Engine, parse_catalog

from tests.policies.frequencies import TIGHT_SE, IntArray, assert_matches_frequencies, reported_per_arm

ROWS = 40_000


def pulls_of(n_arms: int, shape: str, rng: np.random.Generator) -> IntArray:
    if shape == "skewed":  # one arm with 100x the pulls of every other
        pulls = np.full(n_arms, 500, dtype=np.int64)
        pulls[0] *= 100
        return pulls
    return np.round(np.exp(rng.uniform(np.log(30), np.log(30_000), n_arms))).astype(np.int64)


def learned(kind: str, n_arms: int, rate: float, shape: str, seed: int = 0) -> Bandit:
    """A context-free bandit updated with Bernoulli rewards at about ``rate`` per arm."""
    rng = np.random.default_rng(seed)
    arms = np.repeat(np.arange(n_arms, dtype=np.int64), pulls_of(n_arms, shape, rng))
    rates = rate * rng.uniform(0.5, 1.5, n_arms)
    rewards = (rng.random(arms.size) < rates[arms]).astype(np.float64)
    bandit = Bandit({"type": kind}, n_arms, seed=seed + 1)
    bandit.update(np.zeros((arms.size, 0)), arms, rewards)
    assert bandit.state()["pulls"].sum() == arms.size
    return bandit


GRID = [
    (2, 0.001, "skewed"),
    (2, 0.005, "spread"),
    (10, 0.001, "skewed"),
    (10, 0.005, "spread"),
    (100, 0.001, "spread"),
    (100, 0.005, "skewed"),
    (500, 0.001, "spread"),
    (500, 0.005, "skewed"),
]


@pytest.mark.parametrize("kind", ["thompson", "gaussian_thompson"])
@pytest.mark.parametrize(("n_arms", "rate", "shape"), GRID, ids=lambda v: str(v))
def test_reported_propensities_are_the_choice_frequencies(
    kind: str, n_arms: int, rate: float, shape: str
) -> None:
    bandit = learned(kind, n_arms, rate, shape)
    x = np.zeros((ROWS, 0))
    choices, propensities = bandit.select(x)
    probabilities = bandit.action_probabilities(x[:1])[0]
    assert_matches_frequencies(choices[:, 0], propensities[:, 0], probabilities)


@pytest.mark.parametrize("kind", ["thompson", "gaussian_thompson"])
def test_a_later_slot_reports_its_probability_given_the_slots_above(kind: str) -> None:
    """Slot 1 among the rows whose slot 0 picked the commonest arm: the conditional frequencies
    match slot 1's propensities, which are `action_probabilities` with that arm ineligible; the
    pair's probability is the product of the two propensities."""
    n_arms = 10
    bandit = learned(kind, n_arms, 0.002, "spread", seed=3)
    choices, propensities = bandit.select(np.zeros((4 * ROWS, 0)), slots=3)
    first = int(np.bincount(choices[:, 0]).argmax())
    rows = choices[:, 0] == first
    assert rows.sum() >= 10_000
    assert (choices[rows, 1] != first).all()
    eligible = np.ones((1, n_arms), dtype=bool)
    eligible[0, first] = False
    given_first = bandit.action_probabilities(np.zeros((1, 0)), eligible=eligible)[0]
    assert given_first[first] == 0.0
    assert_matches_frequencies(choices[rows, 1], propensities[rows, 1], given_first)
    second = int(np.bincount(choices[rows, 1]).argmax())
    pair = rows & (choices[:, 1] == second)
    joint = float(propensities[pair, 0][0] * propensities[pair, 1][0])
    se = np.sqrt(joint * (1 - joint) / choices.shape[0])
    assert abs(pair.mean() - joint) <= 0.05 * joint + TIGHT_SE * se, (pair.mean(), joint)


CATALOG = """\
version: 1
features:
  - {name: x, type: float}
channels: [web]
placements:
  - {id: hero, channel: web, slots: 2, policy: {type: thompson}}
offers:
  - {id: premium, placements: [hero], value: 120.0, weight: 1.0}
  - {id: standard, placements: [hero], value: 40.0, weight: 2.0}
  - {id: basic, placements: [hero], value: 10.0, weight: 3.0}
  - {id: token, placements: [hero], value: 1.0}
"""
RATES = {"premium": 0.002, "standard": 0.005, "basic": 0.01, "token": 0.05}


def test_the_engine_reports_the_probability_of_value_times_weight_times_a_beta_draw() -> None:
    """A catalog placement under `thompson` with offers of different value and weight, learned
    from reported outcomes at 0.2-5%: each slot's propensity in a batch is the share of rows
    that got that offer there (slot 1 given slot 0)."""
    engine = Engine(parse_catalog(CATALOG, "thompson.yaml"), seed=3, clock="simulated")
    rng = np.random.default_rng(0)
    for _ in range(20_000):
        d = engine.decide("hero", np.zeros(1, np.float32))
        offer = d.offer_ids[0]
        engine.report_outcome(d.decision_id, reward=float(rng.random() < RATES[offer]), offer_id=offer)
    state = engine.policy_state("hero")
    assert sum(a.pulls for a in state) == 20_000 and min(a.pulls for a in state) > 0
    batch = engine.decide_batch("hero", np.zeros((2 * ROWS, 1), np.float32))
    offers = np.asarray(batch.offers, dtype=np.int64)
    propensities = np.asarray(batch.propensities, dtype=np.float64)
    assert offers.shape == (2 * ROWS, 2) and (offers >= 0).all()
    first = reported_per_arm(offers[:, 0], propensities[:, 0], len(RATES))
    assert_matches_frequencies(offers[:, 0], propensities[:, 0], np.nan_to_num(first))
    assert np.nansum(first) == pytest.approx(1.0, abs=1e-6)  # every offer was chosen at slot 0
    top = int(np.bincount(offers[:, 0]).argmax())
    rows = offers[:, 0] == top
    second = reported_per_arm(offers[rows, 1], propensities[rows, 1], len(RATES))
    assert np.isnan(second[top]) and np.nansum(second) == pytest.approx(1.0, abs=1e-6)
    assert_matches_frequencies(offers[rows, 1], propensities[rows, 1], np.nan_to_num(second))
    # Value x weight matters: the offer with the best rate is not the one chosen most.
    assert RATES[[o.offer_id for o in state][top]] < max(RATES.values())
