"""Open Bandit Dataset: each logging policy's value, estimated from the other policy's log,
agrees with its own (on-policy) click rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from decision_engine.cli import main
from decision_engine.errors import InvalidInputError
from decision_engine.evaluation import (
    LoggedBandit,
    context_free_distribution,
    estimate,
    load_obd,
    on_policy,
    positional_policy,
    uniform_policy,
)

OBD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "obd"
pytestmark = pytest.mark.skipif(
    not (OBD / "random" / "all" / "all.csv").exists(),
    reason=f"the Open Bandit Dataset sample is not at {OBD} (random/all/all.csv, bts/all/all.csv)",
)


@pytest.fixture(scope="module")
def random_log() -> LoggedBandit:
    return load_obd(OBD / "random" / "all" / "all.csv")


@pytest.fixture(scope="module")
def bts_log() -> LoggedBandit:
    return load_obd(OBD / "bts" / "all" / "all.csv")


def test_loader_reads_the_obd_columns(random_log: LoggedBandit) -> None:
    assert random_log.n == 10_000 and random_log.n_actions == 80
    assert random_log.X is not None and random_log.X.shape == (10_000, 32)
    assert (random_log.X.sum(axis=1) == 4).all()  # one bucket per user feature
    assert random_log.position is not None and set(random_log.position.tolist()) == {0, 1, 2}
    assert np.allclose(random_log.propensity, 1 / 80)
    assert random_log.time is not None and (np.diff(random_log.time) >= 0).all()
    wide = load_obd(OBD / "random" / "all" / "all.csv", affinity=True)
    assert wide.X is not None and wide.X.shape == (10_000, 32 + 80)


def test_uniform_policy_value_from_the_bts_log(random_log: LoggedBandit, bts_log: LoggedBandit) -> None:
    truth = on_policy(random_log).value  # 0.0038 in this sample
    for name, e in estimate(bts_log, uniform_policy(bts_log), ["ips", "snips", "dr"]).items():
        assert e.lower <= truth <= e.upper, (name, e, truth)


@pytest.mark.parametrize("method", ["mean_propensity", "frequency"])
def test_bts_policy_value_from_the_random_log(
    random_log: LoggedBandit, bts_log: LoggedBandit, method: str
) -> None:
    """BTS is context-free: its action distribution per position is estimated from its own log
    (`context_free_distribution`: mean logged propensity per (item, position) renormalised, or
    the logged frequency), then scored on the uniform random log."""
    truth = on_policy(bts_log).value  # 0.0042 in this sample
    per_position = context_free_distribution(bts_log, method)
    assert per_position.shape == (3, 80) and np.allclose(per_position.sum(axis=1), 1.0)
    pi = positional_policy(per_position, random_log)
    for name, e in estimate(random_log, pi).items():
        assert e.lower <= truth <= e.upper, (name, e, truth)


def test_not_an_obd_file(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match="missing OBD columns"):
        load_obd(path)


def test_evaluate_on_the_obd_log_refuses_absent_features_and_warns() -> None:
    """`decision-engine evaluate` on the real log: a catalog feature name is an error; a sparse
    click log gives intervals that reach below 0, which the table says."""
    log = str(OBD / "random" / "all" / "all.csv")
    runner = CliRunner()
    result = runner.invoke(
        main, ["evaluate", "--log", log, "--policy", '{"type": "lin_ucb", "features": ["age"]}']
    )
    assert result.exit_code == 1
    assert "lin_ucb policy: the log has no feature 'age'" in " ".join(result.output.split())
    policy = '{"type": "lin_thompson", "scale": 0.1}'
    result = runner.invoke(main, ["evaluate", "--log", log, "--policy", policy])
    assert result.exit_code == 0, result.output
    output = " ".join(result.stdout.split())
    assert "10,000 logged rows" in output
    assert "leaves the possible range [0, 1] of the value" in output
    args = ["evaluate", "--log", log, "--policy", policy, "--train-fraction", "0.7", "--bootstrap", "100"]
    result = runner.invoke(main, [*args, "--clip", "20", "--format", "json"])
    assert result.exit_code == 0, result.output
    (placement,) = json.loads(result.stdout)["placements"]
    assert placement["logging"]["n"] == 3000
    ips_estimate = placement["policies"][0]["estimates"]["ips"]
    assert (
        ips_estimate["n"] == 3000 and ips_estimate["lower"] <= ips_estimate["value"] <= ips_estimate["upper"]
    )
