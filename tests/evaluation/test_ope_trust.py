"""Estimates that should not be trusted say so: a tiny effective sample size, an interval that
reaches impossible values or has zero width; a policy's features must exist in the log."""

from __future__ import annotations

import numpy as np
import pytest
from decision_engine.errors import InvalidInputError
from decision_engine.evaluation import LoggedBandit, Options, estimate, ips, on_policy, snips
from decision_engine.evaluation.estimators import MIN_ESS


def uniform_log(n: int, n_actions: int, rate: float, seed: int = 0) -> LoggedBandit:
    rng = np.random.default_rng(seed)
    return LoggedBandit(
        reward=(rng.random(n) < rate).astype(float),
        action=rng.integers(0, n_actions, n),
        propensity=np.full(n, 1.0 / n_actions),
        n_actions=n_actions,
    )


def always(data: LoggedBandit, action: int) -> np.ndarray:
    return np.full(data.n, action)


def test_a_well_supported_estimate_has_no_warnings() -> None:
    data = uniform_log(20_000, 2, 0.3)
    result = estimate(data, np.full((data.n, 2), 0.5))
    assert set(result) == {"replay", "ips", "snips", "dr"}
    for e in result.values():
        assert abs(e.value - 0.3) < 0.02 and e.lower < e.value < e.upper
        assert e.warnings == (), (e.estimator, e.warnings)
    assert on_policy(data).warnings == ()


def test_tiny_effective_sample_size_is_a_warning() -> None:
    data = uniform_log(500, 10, 0.3)  # about 50 rows where the target's action was logged
    e = snips(data, always(data, 0))
    assert e.ess is not None and e.ess < MIN_ESS
    (warning,) = [w for w in e.warnings if "effective sample size" in w]
    assert f"effective sample size {e.ess:.1f} (< 100) of 500 rows" in warning
    assert "not reliable" in warning


def test_interval_below_zero_is_a_warning() -> None:
    n = 1000
    action = np.arange(n) % 10
    reward = np.zeros(n)
    reward[[0, 10]] = 1.0  # two clicks, both on the target's action, each weighing 10
    data = LoggedBandit(reward=reward, action=action, propensity=np.full(n, 0.1), n_actions=10)
    e = ips(data, always(data, 0))
    assert e.lower < 0
    assert any(
        f"interval [{e.lower:.4g}, {e.upper:.4g}] leaves the possible range [0, 1] of the value" in w
        for w in e.warnings
    ), e.warnings


def test_interval_above_the_largest_reward_is_a_warning() -> None:
    n = 50
    action = np.where(np.arange(n) < 20, 0, 1)
    data = LoggedBandit(
        reward=(action == 0).astype(float), action=action, propensity=np.full(n, 0.1), n_actions=10
    )
    e = ips(data, always(data, 0))  # every weight is 10: the estimate is 4 clicks per decision
    assert e.value == pytest.approx(4.0) and e.upper > 1
    assert any("leaves the possible range [0, 1]" in w for w in e.warnings), e.warnings
    # a declared reward range replaces the log's own
    wide = ips(data, always(data, 0), Options(reward_range=(0.0, 100.0)))
    assert wide.value == e.value
    assert not any("possible range" in w for w in wide.warnings)


def test_zero_width_interval_is_a_warning() -> None:
    data = uniform_log(2000, 4, 0.0)  # no reward anywhere
    for name, e in estimate(data, always(data, 1), ["ips", "snips", "dr"]).items():
        assert e.lower == e.upper == 0.0
        assert any("[0, 0] has zero width" in w and "not certainty" in w for w in e.warnings), (
            name,
            e.warnings,
        )
    assert any("zero width" in w for w in on_policy(data).warnings)


def test_warnings_are_in_the_json_form() -> None:
    data = uniform_log(2000, 4, 0.0)
    e = ips(data, always(data, 1))
    assert e.to_dict()["warnings"] == list(e.warnings) and e.warnings


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="max_weight must be positive, got 0"):
        Options(max_weight=0)
    with pytest.raises(InvalidInputError, match="reward_range must be"):
        Options(reward_range=(1.0, 0.0))


def test_a_policy_may_only_select_features_the_log_names() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    names = ("age", "region[0]", "region[1]", "spend")
    data = LoggedBandit(
        reward=np.zeros(40),
        action=np.zeros(40, dtype=np.int64),
        propensity=np.ones(40),
        n_actions=2,
        X=X,
        feature_names=names,
    )
    assert data.features() == ["age", "region", "spend"]
    chosen = data.select_features(["spend", "region"])
    assert chosen.feature_names == ("spend", "region[0]", "region[1]")
    assert chosen.X is not None and np.array_equal(chosen.X, X[:, [3, 1, 2]])
    with pytest.raises(
        InvalidInputError, match=r"the log has no feature 'income' .*it has: age, region, spend"
    ):
        data.select_features(["age", "income"])
    unnamed = LoggedBandit(
        reward=np.zeros(40), action=np.zeros(40, dtype=np.int64), propensity=np.ones(40), n_actions=2, X=X
    )
    with pytest.raises(InvalidInputError, match="does not name its 4 feature columns"):
        unnamed.select_features(["age"])
    with pytest.raises(InvalidInputError, match="feature_names must name the 4 columns of X, got 3"):
        LoggedBandit(
            reward=np.zeros(40),
            action=np.zeros(40, dtype=np.int64),
            propensity=np.ones(40),
            n_actions=2,
            X=X,
            feature_names=names[:3],
        )
