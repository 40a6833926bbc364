"""Every policy type in a catalog: decisions, learning from outcomes, saved state."""

import json

import numpy as np
import pytest
from decision_engine import CatalogError, Engine, InvalidInputError, parse_catalog

POLICIES = [
    {"type": "thompson"},
    {"type": "gaussian_thompson", "prior_variance": 0.25},
    {"type": "ucb1", "exploration": 0.5},
    {"type": "epsilon_greedy", "epsilon": 0.1},
    {"type": "softmax", "temperature": 0.05},
    {"type": "lin_ucb", "alpha": 1.5, "features": ["x", "bias"]},
    {"type": "lin_thompson", "scale": 0.3},
]


def catalog(policy: dict[str, object]):
    return parse_catalog(
        f"""\
version: 1
features:
  - {{name: x, type: float}}
  - {{name: bias, type: float}}
  - {{name: noise, type: float}}
channels: [web]
placements:
  - {{id: hero, channel: web, slots: 1, policy: {json.dumps(policy)}}}
offers:
  - {{id: left, placements: [hero]}}
  - {{id: right, placements: [hero]}}
  - {{id: middle, placements: [hero]}}
""",
        "policies.yaml",
    )


def environment(x: float) -> dict[str, float]:
    """Click rates: 'left' is best for low x, 'right' for high x, 'middle' never best."""
    return {"left": 0.8 - 0.6 * x, "right": 0.2 + 0.6 * x, "middle": 0.45}


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p["type"])
def test_each_policy_learns_from_reported_outcomes(policy):
    engine = Engine(catalog(policy), seed=3, clock="simulated")
    rng = np.random.default_rng(1)
    contextual = policy["type"].startswith("lin_")
    late_regret = []
    for step in range(3000):
        x = float(rng.random()) if contextual else 0.1
        d = engine.decide("hero", np.array([x, 1.0, rng.random()], np.float32))
        (offer,) = d.offer_ids
        assert 0.0 < d.offers[0].propensity <= 1.0
        rates = environment(x)
        engine.report_outcome(d.decision_id, reward=float(rng.random() < rates[offer]))
        if step >= 2500:
            late_regret.append(max(rates.values()) - rates[offer])
    # Context-free policies face x = 0.1 only: 'left' (0.74) is best.
    assert np.mean(late_regret) < 0.08, (policy, np.mean(late_regret))
    state = {a.offer_id: a for a in engine.policy_state("hero")}
    assert sum(a.pulls for a in state.values()) == pytest.approx(3000)
    assert all(a.uncertainty >= 0 for a in state.values())


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p["type"])
def test_saved_state_loads_into_a_fresh_engine(policy, tmp_path):
    engine = Engine(catalog(policy), seed=1, clock="simulated")
    for i in range(50):
        d = engine.decide("hero", np.array([i / 50, 1.0, 0.0], np.float32))
        engine.report_outcome(d.decision_id, reward=float(i % 3 == 0))
    engine.save_policy_state(tmp_path / "state.json")
    fresh = Engine(catalog(policy), seed=1, clock="simulated")
    assert fresh.load_policy_state(tmp_path / "state.json") == (3, 0)
    for loaded, learned in zip(fresh.policy_state("hero"), engine.policy_state("hero"), strict=True):
        assert (loaded.offer_id, loaded.pulls, loaded.mean) == (learned.offer_id, learned.pulls, learned.mean)
        assert loaded.uncertainty == pytest.approx(learned.uncertainty, rel=1e-9)


def test_state_of_another_policy_is_skipped_not_misread(tmp_path):
    engine = Engine(catalog({"type": "thompson"}), seed=1, clock="simulated")
    engine.save_policy_state(tmp_path / "state.json")
    other = Engine(catalog({"type": "lin_ucb"}), seed=1, clock="simulated")
    assert other.load_policy_state(tmp_path / "state.json") == (0, 3)


def test_a_newer_or_foreign_state_file_is_refused_and_changes_nothing(tmp_path):
    engine = Engine(catalog({"type": "ucb1"}), seed=1, clock="simulated")
    d = engine.decide("hero", np.zeros(3, np.float32))
    engine.report_outcome(d.decision_id, reward=1.0)
    before = engine._core.save_policy_state()
    saved = json.loads(engine._core.save_policy_state())
    saved["version"] = 9
    (tmp_path / "newer.json").write_text(json.dumps(saved))
    with pytest.raises(
        InvalidInputError, match=r"newer.json: .*version 9 is not readable .*reads versions 1 to 1"
    ):
        engine.load_policy_state(tmp_path / "newer.json")
    (tmp_path / "other.json").write_text('{"format": "decision-engine/bandit", "version": 1}')
    with pytest.raises(InvalidInputError, match="expected a decision-engine/policy-state file"):
        engine.load_policy_state(tmp_path / "other.json")
    assert engine._core.save_policy_state() == before


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"type": "epsilon_greedy", "epsilon": 2},
            "policy.epsilon: epsilon_greedy needs 0 <= epsilon <= 1, got 2",
        ),
        ({"type": "ucb1", "epsilon": 0.1}, "policy: unknown field 'epsilon'"),
        ({"type": "lin_ucb", "window": 5}, "policy: unknown field 'window'"),
        ({"type": "softmax", "temperature": 0}, "policy.temperature: softmax needs temperature > 0, got 0"),
        ({"type": "thompson", "discount": 1.5}, "policy.discount: thompson needs 0 < discount <= 1, got 1.5"),
    ],
)
def test_bad_policy_parameters_name_the_placement_and_parameter(policy, message):
    with pytest.raises(CatalogError, match=rf"policies.yaml:8:\d+: placement 'hero': {message}"):
        catalog(policy)


def test_a_contextual_policy_must_read_known_features():
    with pytest.raises(CatalogError, match="policy lin_ucb reads unknown feature 'age'"):
        Engine(catalog({"type": "lin_ucb", "features": ["age"]}), clock="simulated")


def test_gaussian_thompson_learns_real_rewards_and_thompson_refuses_them():
    engine = Engine(
        catalog({"type": "gaussian_thompson", "prior_variance": 100.0}), seed=4, clock="simulated"
    )
    for revenue in (25.0, 35.0):
        d = engine.decide("hero", np.zeros(3, np.float32))
        engine.report_outcome(d.decision_id, reward=revenue)
    learned = [a for a in engine.policy_state("hero") if a.pulls > 0]
    assert sum(a.pulls for a in learned) == 2 and max(a.mean for a in learned) > 10
    thompson = Engine(catalog({"type": "thompson"}), seed=4, clock="simulated")
    d = thompson.decide("hero", np.zeros(3, np.float32))
    with pytest.raises(InvalidInputError, match=r"\[0, 1\] for placement 'hero' \(Beta-Bernoulli thompson\)"):
        thompson.report_outcome(d.decision_id, reward=25.0)
    thompson.report_outcome(d.decision_id, reward=1.0)  # refused without settling it
