"""Every decision logged with what off-policy evaluation needs, and read back for it."""

import numpy as np
import pyarrow.parquet as pq
from decision_engine import Engine
from decision_engine.decision_log import DecisionLog, load_decision_log
from decision_engine.evaluation import estimate, on_policy

from tests.clock import NOW_SECONDS
from tests.policies.test_engine_policies import catalog, environment


def test_logged_decisions_carry_eligible_sets_propensities_and_features(tmp_path):
    engine = Engine(catalog({"type": "epsilon_greedy", "epsilon": 0.3}), seed=2, clock="simulated")
    rng = np.random.default_rng(3)
    with DecisionLog(tmp_path, policy_version=engine.policy_version, features=True) as log:
        for i in range(3000):
            x = np.array([rng.random(), 1.0, rng.random()], np.float32)
            now = NOW_SECONDS + i
            # Every other profile cannot see 'middle': the eligible set varies.
            d = engine.decide("hero", x, now=now, explain=True, exclude=["middle"] if i % 2 else [])
            log.decision(d, f"p{i}", now, features=x)
            (offer,) = d.offer_ids
            reward = float(rng.random() < environment(float(x[0]))[offer])
            engine.report_outcome(d.decision_id, reward)
            if reward:
                log.outcome(d.decision_id, offer, now + 1, value=1.0)
    table = pq.read_table(tmp_path / "decisions.parquet")
    assert table.num_rows == 3000
    assert set(table["policy_version"].to_pylist()) == {engine.policy_version}
    eligible = table["eligible"].to_pylist()
    assert eligible[0] == ["left", "right", "middle"] and eligible[1] == ["left", "right"]
    assert all(len(f) == 3 for f in table["features"].to_pylist())
    assert (table["experiment"].to_numpy(zero_copy_only=False) == "").all()

    data = load_decision_log(
        tmp_path / "decisions.parquet", tmp_path / "outcomes.parquet", offers=["left", "right", "middle"]
    )
    assert data.n == 3000 and data.X is not None and data.X.shape == (3000, 3)
    assert data.mask is not None and not data.mask[1::2, 2].any()
    # Uniform choice among the eligible offers, estimated from this epsilon-greedy log, is
    # within its interval of its true value: (0.8 - 0.6x + 0.2 + 0.6x + 0.45) / 3 with
    # 'middle' eligible, 0.5 without, half the rows each.
    truth = 0.5 * (1.45 / 3) + 0.5 * 0.5
    uniform = np.where(data.mask, 1.0, 0.0)
    uniform /= uniform.sum(axis=1, keepdims=True)
    for name, e in estimate(data, uniform, ["ips", "snips", "dr"]).items():
        assert e.lower <= truth <= e.upper, (name, e, truth)
    assert abs(on_policy(data).value - float(data.reward.mean())) < 1e-12
