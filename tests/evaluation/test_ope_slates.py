"""Several slots per decision: a slot's logged propensity is its probability given the slots
above, and the estimators chain the ratios of a decision's slots (`LoggedBandit.decision`).

The exact check enumerates every slate of a small problem as often as the logging policy
draws it (in sixtieths), with each slot's expected reward as its reward: an unbiased estimator
then gives the target's value exactly, and one that treats the rows apart does not.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from decision_engine.decision_log import load_decision_log
from decision_engine.decision_log.format import DecisionLogWriter, OutcomeLogWriter
from decision_engine.errors import InvalidInputError
from decision_engine.evaluation import (
    LoggedBandit,
    dr,
    engine_bandit,
    evaluate_trained,
    ips,
    progressive_probabilities,
    replay,
    snips,
)

FloatArray = npt.NDArray[np.float64]
LOGGING = np.array([1 / 2, 1 / 3, 1 / 6])  # slot 0; slot 1 is the same renormalised over the rest
TARGET = np.array([0.1, 0.3, 0.6])
MEAN = np.array([[0.2, 0.5, 0.9], [0.1, 0.3, 0.6]])  # expected reward by slot and action
FIRST_ID = 2**63 + 5  # engine decision ids are uint64


def given(first: int, policy: FloatArray) -> FloatArray:
    """A sequential policy's slot-1 distribution given its slot 0 picked ``first``."""
    rest = policy.copy()
    rest[first] = 0.0
    out: FloatArray = rest / rest.sum()
    return out


def enumerated_log() -> tuple[LoggedBandit, FloatArray]:
    """Every slate (a, b) repeated 60 P(a, b) times under the logging policy, and the target's
    probabilities of each row given the logged slots above."""
    rows: list[tuple[int, int, int, float, FloatArray]] = []  # decision, slot, action, propensity, pi
    decision = 0
    for a in range(3):
        for b in range(3):
            if a == b:
                continue
            count = round(60 * LOGGING[a] * given(a, LOGGING)[b])
            for _ in range(count):
                rows.append((decision, 0, a, LOGGING[a], TARGET))
                rows.append((decision, 1, b, given(a, LOGGING)[b], given(a, TARGET)))
                decision += 1
    assert decision == 60
    order = np.random.default_rng(0).permutation(len(rows))  # row order must not matter
    rows = [rows[i] for i in order]
    position = np.array([r[1] for r in rows])
    action = np.array([r[2] for r in rows])
    data = LoggedBandit(
        reward=MEAN[position, action],
        action=action,
        propensity=np.array([r[3] for r in rows]),
        n_actions=3,
        position=position,
        decision=np.array([FIRST_ID + r[0] for r in rows], dtype=np.uint64),
    )
    return data, np.array([r[4] for r in rows])


def target_value() -> float:
    """The target's mean reward per slot over its own slates."""
    first = float(TARGET @ MEAN[0])
    second = sum(TARGET[a] * float(given(a, TARGET) @ MEAN[1]) for a in range(3))
    return (first + second) / 2


def test_chained_ratios_give_the_targets_slate_value_exactly() -> None:
    data, pi = enumerated_log()
    truth = target_value()
    assert data.position is not None
    # DR is exact whatever its model of the reward by slot and action.
    noisy_q = np.random.default_rng(1).random((2, 3))[data.position]
    for estimate in (ips(data, pi), snips(data, pi), dr(data, pi, q=noisy_q)):
        assert estimate.n == 120
        assert estimate.value == pytest.approx(truth, abs=1e-12), estimate
    # Rows taken apart weight slot 1 by its own ratio only: the target's slot 1 after the
    # logging policy's slot 0, not after its own.
    apart = replace(data, decision=None)
    assert abs(ips(apart, pi).value - truth) > 0.01


def test_a_slot_weight_is_the_product_of_its_ratio_and_those_above() -> None:
    data, pi = enumerated_log()
    ratios = pi[np.arange(data.n), data.action] / data.propensity
    chained = data.chained(ratios)
    above = data.chained(ratios, own=False)
    assert data.position is not None and data.decision is not None
    for row in np.flatnonzero(data.position == 1)[:10]:
        (first,) = np.flatnonzero((data.decision == data.decision[row]) & (data.position == 0))
        assert chained[row] == pytest.approx(ratios[first] * ratios[row])
        assert above[row] == pytest.approx(ratios[first])
    assert np.array_equal(above[data.position == 0], np.ones(60))
    eligible = data.eligible_given_above()
    for row in np.flatnonzero(data.position == 1)[:10]:
        (first,) = np.flatnonzero((data.decision == data.decision[row]) & (data.position == 0))
        assert not eligible[row, data.action[first]] and eligible[row].sum() == 2
    assert eligible[data.position == 0].all()


def test_replay_of_a_slate_log_uses_the_first_slot() -> None:
    data, _ = enumerated_log()
    assert data.position is not None
    always_first = np.zeros(data.n, dtype=np.int64)  # action 0 at every row
    result = replay(data, always_first)
    assert result.n == int(((data.position == 0) & (data.action == 0)).sum()) == 30
    assert result.value == pytest.approx(MEAN[0, 0])


def test_every_slot_above_must_be_logged() -> None:
    with pytest.raises(InvalidInputError, match=r"decision 7 has slots \[0, 2\], expected 0..1 once each"):
        LoggedBandit(
            reward=np.zeros(3),
            action=np.array([0, 1, 2]),
            propensity=np.full(3, 0.5),
            n_actions=3,
            position=np.array([0, 2, 0]),
            decision=np.array([7, 7, 8]),
        )
    with pytest.raises(InvalidInputError, match="needs position too"):
        LoggedBandit(
            reward=np.zeros(2), action=np.array([0, 1]), propensity=np.ones(2), n_actions=2, decision=[1, 1]
        )


def test_splits_and_chunks_keep_each_decision_whole() -> None:
    n = 301  # decisions of 2 slots, several sharing a time
    time = np.repeat(np.arange(n) // 3, 2).astype(np.float64)
    rng = np.random.default_rng(2)
    first = rng.integers(0, 4, n)
    second = (first + 1 + rng.integers(0, 3, n)) % 4
    data = LoggedBandit(
        reward=(rng.random(2 * n) < 0.3).astype(np.float64),
        action=np.column_stack([first, second]).ravel(),
        propensity=np.column_stack([np.full(n, 1 / 4), np.full(n, 1 / 3)]).ravel(),
        n_actions=4,
        position=np.tile([0, 1], n),
        time=time,
        decision=np.repeat(rng.permutation(n), 2),
    )
    train, test = data.split_in_time(0.5)
    assert train.decision is not None and test.decision is not None
    assert train.n + test.n == data.n and train.n % 2 == 0
    assert not set(train.decision.tolist()) & set(test.decision.tolist())
    # Scored chunk by chunk (chunks of 7 rows would split decisions): a slot-1 row is scored
    # given its decision's slot 0.
    pi = progressive_probabilities(engine_bandit({"type": "thompson"}, 4, 0), data, chunk_size=7)
    slot1 = np.flatnonzero(data.position == 1)
    assert (pi[slot1, first] == 0).all() and np.allclose(pi.sum(axis=1), 1.0)
    results = evaluate_trained(lambda: engine_bandit({"type": "thompson"}, 4, 0), data, 0.5, ["ips"])
    assert results["ips"].n == test.n


def test_the_engine_log_is_read_with_its_decisions(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    decisions = tmp_path / "decisions.parquet"
    with DecisionLogWriter(decisions) as writer:
        writer.append(
            [
                {
                    "decision_id": FIRST_ID + d,
                    "time": t0 + timedelta(minutes=d),
                    "profile_id": f"p{d}",
                    "placement": "hero",
                    "experiment": "holdout",
                    "group": "personalized",
                    "offer_id": offer,
                    "slot": slot,
                    "propensity": p,
                }
                for d in range(2)
                for slot, (offer, p) in enumerate([("a", 0.5), ("b", 0.8)])
            ]
        )
    with OutcomeLogWriter(tmp_path / "outcomes.parquet") as writer:
        writer.append(
            [
                {
                    "decision_id": FIRST_ID + 1,
                    "offer_id": "b",
                    "time": t0 + timedelta(hours=1),
                    "reward": 1.0,
                    "value": 1.0,
                }
            ]
        )
    data = load_decision_log(decisions, tmp_path / "outcomes.parquet")
    assert data.decision is not None and data.position is not None
    assert data.decision.tolist() == [FIRST_ID, FIRST_ID, FIRST_ID + 1, FIRST_ID + 1]
    assert data.position.tolist() == [0, 1, 0, 1]
    assert data.reward.tolist() == [0.0, 0.0, 0.0, 1.0]
    both_ones = np.ones((4, 2)) / 2
    # Each slot-1 weight carries its slot 0's: (0.5 / 0.5) x (0.5 / 0.8).
    assert ips(data, both_ones).value == pytest.approx((0.5 / 0.8) / 4)
