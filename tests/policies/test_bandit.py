"""The standalone Bandit from Python: numpy in and out, clear errors, files."""

import numpy as np
import pytest
from decision_engine import Bandit, InvalidInputError, StorageError


def test_select_update_and_state_from_numpy():
    bandit = Bandit({"type": "lin_ucb"}, n_arms=4, n_features=3, seed=2)
    assert bandit.policy == {"type": "lin_ucb", "alpha": 1.0, "ridge": 1.0, "discount": 1.0}
    x = np.random.default_rng(0).random((20, 3))  # float64 is converted
    eligible = np.ones((20, 4), bool)
    eligible[:, 0] = False
    choices, propensities = bandit.select(x, slots=2, eligible=eligible)
    assert choices.shape == propensities.shape == (20, 2)
    assert choices.dtype == np.int64 and not (choices == 0).any()
    bandit.update(x, choices[:, 0].copy(), np.ones(20))
    state = bandit.state()
    assert state["pulls"].sum() == 20 and state["mean_reward"][choices[:, 0]].min() == 1.0
    probabilities = bandit.action_probabilities(x, eligible=eligible)
    assert probabilities.shape == (20, 4) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities[:, 0] == 0).all()


def test_same_seed_same_choices():
    x = np.random.default_rng(1).random((100, 2), dtype=np.float32)
    runs = [Bandit({"type": "lin_thompson"}, 5, 2, seed=9).select(x) for _ in range(2)]
    assert np.array_equal(runs[0][0], runs[1][0])
    other = Bandit({"type": "lin_thompson"}, 5, 2, seed=10).select(x)
    assert not np.array_equal(runs[0][0], other[0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.select(np.zeros((2, 5))), "expected rows of 3 features, got 5"),
        (lambda b: b.select(np.zeros((2, 3)), eligible=np.ones((2, 2), bool)), r"eligible must be 2 x 4"),
        (
            lambda b: b.update(np.zeros((1, 3)), np.array([7]), np.array([1.0])),
            "arm 7 of row 0 is out of range",
        ),
        (
            lambda b: b.update(np.zeros((2, 3)), np.array([1]), np.array([1.0])),
            "one arm and one reward per row",
        ),
        (lambda b: b.select(np.full((1, 3), np.inf)), "row 0 column 0 is not a finite number"),
    ],
)
def test_bad_input_says_what_was_expected(call, message):
    with pytest.raises(InvalidInputError, match=message):
        call(Bandit({"type": "lin_ucb"}, 4, 3))


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"type": "ucb1", "epsilon": 0.2}, "policy 'ucb1' does not take 'epsilon'"),
        ({"type": "softmax", "temperature": -1}, "softmax needs temperature > 0, got -1"),
        ({"type": "nope"}, "unknown policy type 'nope'"),
    ],
)
def test_bad_parameters_are_rejected(policy, message):
    with pytest.raises(InvalidInputError, match=message):
        Bandit(policy, 3)


def test_save_and_load(tmp_path):
    bandit = Bandit({"type": "epsilon_greedy", "epsilon": 0.2, "window": 50}, 3, seed=4)
    bandit.update(np.zeros((3, 0)), np.array([0, 1, 1]), np.array([1.0, 0.0, 1.0]))
    bandit.save(tmp_path / "b.json")
    loaded = Bandit.load(tmp_path / "b.json")
    assert loaded.policy == bandit.policy
    for key, values in bandit.state().items():
        assert np.array_equal(loaded.state()[key], values)
    assert np.array_equal(loaded.select(np.zeros((10, 0)))[0], bandit.select(np.zeros((10, 0)))[0])
    (tmp_path / "bad.json").write_text('{"format": "decision-engine/bandit", "version": 3}')
    with pytest.raises(InvalidInputError, match=r"bad.json: .*version 3 is not readable"):
        Bandit.load(tmp_path / "bad.json")


def test_a_file_that_cannot_be_read_or_written_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError, match=r"cannot read bandit file .*missing.json: "):
        Bandit.load(tmp_path / "missing.json")
    with pytest.raises(StorageError, match=r"cannot write bandit file .*no_such_dir"):
        Bandit({"type": "thompson"}, 2).save(tmp_path / "no_such_dir" / "b.json")
    assert not (tmp_path / "no_such_dir").exists()
