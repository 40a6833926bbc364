"""IPS on a log simulated from our own `thompson` (issue 17: "IPS of that policy comes out 7.6x
too high and SNIPS 39% too low").

A `thompson` bandit with a fixed learned state (click rates near 0.1-0.5%) logs its decisions
with the propensities it reports; the rewards are drawn from known click rates, so a policy's
true value is its choice distribution (`Bandit.action_probabilities`, checked against choice
frequencies in tests/policies/test_thompson_propensities.py) times those rates. The estimators
must recover it from the log: the same policy, and another one (the same state with its most
chosen offer left out), on one slot and on two (each slot's propensity given the slots above).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from decision_engine import Bandit
from decision_engine.evaluation import LoggedBandit, estimate

FloatArray = npt.NDArray[np.float64]
ROWS = 100_000


def problem(n_arms: int, rate: float, seed: int) -> tuple[Bandit, FloatArray]:
    """A thompson state learned from 30 to 30,000 pulls per arm, and the true click rates."""
    rng = np.random.default_rng(seed)
    rates = rate * rng.uniform(0.3, 2.0, n_arms)
    pulls = np.round(np.exp(rng.uniform(np.log(300), np.log(30_000), n_arms))).astype(np.int64)
    arms = np.repeat(np.arange(n_arms, dtype=np.int64), pulls)
    bandit = Bandit({"type": "thompson"}, n_arms, seed=seed + 1)
    bandit.update(np.zeros((arms.size, 0)), arms, (rng.random(arms.size) < rates[arms]).astype(np.float64))
    return bandit, rates


def simulated_log(bandit: Bandit, rates: FloatArray, slots: int, seed: int) -> LoggedBandit:
    choices, propensities = bandit.select(np.zeros((ROWS, 0)), slots=slots)
    clicks = np.random.default_rng(seed).random(choices.shape) < rates[choices]
    return LoggedBandit(
        reward=clicks.astype(np.float64).ravel(),
        action=choices.ravel(),
        propensity=propensities.ravel(),
        n_actions=bandit.n_arms,
        position=np.tile(np.arange(slots), ROWS),
        decision=np.repeat(np.arange(ROWS), slots) if slots > 1 else None,
    )


def probabilities(bandit: Bandit, eligible: npt.NDArray[np.bool_]) -> FloatArray:
    return bandit.action_probabilities(np.zeros((eligible.shape[0], 0)), eligible=eligible)


def slate_value(bandit: Bandit, rates: FloatArray, allowed: npt.NDArray[np.bool_], slots: int) -> float:
    """The mean click rate per slot of the policy that picks slot after slot among ``allowed``
    less the picks above, each pick a fresh Thompson draw (1 or 2 slots)."""
    first = probabilities(bandit, allowed[None])[0]
    values = [float(first @ rates)]
    if slots == 2:
        second = 0.0
        for arm in np.flatnonzero(first > 0):
            rest = allowed.copy()
            rest[arm] = False
            second += first[arm] * float(probabilities(bandit, rest[None])[0] @ rates)
        values.append(second)
    return float(np.mean(values))


@pytest.mark.parametrize(("n_arms", "rate"), [(80, 0.004), (500, 0.001)])
def test_ips_of_the_logging_thompson_on_its_own_log_recovers_its_value(n_arms: int, rate: float) -> None:
    bandit, rates = problem(n_arms, rate, seed=n_arms)
    data = simulated_log(bandit, rates, slots=1, seed=1)
    assert 0.5 * rate < data.reward.mean() < 3 * rate
    truth = slate_value(bandit, rates, np.ones(n_arms, dtype=bool), slots=1)
    # Context-free: one distribution for every row.
    pi = np.broadcast_to(probabilities(bandit, np.ones((1, n_arms), dtype=bool)), (data.n, n_arms))
    results = estimate(data, pi, ["ips", "snips"])
    for name, e in results.items():
        assert e.lower <= truth <= e.upper, (name, e, truth)
        assert abs(e.value / truth - 1) < 0.2, (name, e.value / truth)
    # The reported propensities are the policy's probabilities: every weight is 1 (the floor of
    # a tiny propensity aside), so the effective sample size is all the rows.
    assert results["ips"].ess is not None and results["ips"].ess > 0.99 * data.n


@pytest.mark.parametrize("slots", [1, 2])
def test_another_policy_evaluated_on_the_thompson_log(slots: int) -> None:
    """The target leaves out the logging policy's most chosen offer: weights differ from 1,
    and with two slots a slot-1 row weighs by its slot 0's ratio too."""
    n_arms = 20
    bandit, rates = problem(n_arms, 0.004, seed=7)
    data = simulated_log(bandit, rates, slots=slots, seed=2)
    allowed = np.ones(n_arms, dtype=bool)
    allowed[int(np.argmax(probabilities(bandit, allowed[None])[0]))] = False
    truth = slate_value(bandit, rates, allowed, slots)
    pi = probabilities(bandit, data.eligible_given_above() & allowed)
    results = estimate(data, pi, ["ips", "snips", "dr"])
    for name, e in results.items():
        assert e.ess is not None and e.ess < 0.9 * data.n  # the weights vary
        assert e.lower <= truth <= e.upper, (name, e, truth)
