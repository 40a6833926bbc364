"""`decision-engine evaluate` on a small log written here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from decision_engine.cli import evaluate as evaluate_cli
from decision_engine.cli import main
from decision_engine.decision_log import DecisionLogWriter, OutcomeLogWriter, features_hash
from decision_engine.evaluation import Options

CATALOG = """\
version: 1
features:
  - {name: age, type: float}
  - {name: spend, type: float}
channels: [web]
placements:
  - {id: hero, channel: web, slots: 1, policy: {type: thompson}}
offers:
  - {id: a, placements: [hero]}
  - {id: b, placements: [hero]}
  - {id: c, placements: [hero]}
"""
RATES = {"a": 0.05, "b": 0.30, "c": 0.15}
T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """600 uniform-random decisions over three offers; returns catalog, log folder, click rate."""
    folder = tmp_path_factory.mktemp("ope-log")
    catalog = folder / "catalog.yaml"
    catalog.write_text(CATALOG)
    rng = np.random.default_rng(0)
    n = 600
    offers = rng.choice(list(RATES), size=n)
    features = rng.normal(size=(n, 2)).astype(np.float32)
    converted = rng.random(n) < np.array([RATES[o] for o in offers])
    with DecisionLogWriter(folder / "decisions.parquet", ope=True, features=True) as writer:
        writer.append(
            {
                "decision_id": np.arange(n, dtype=np.uint64),
                "time": T0 + 60.0 * np.arange(n),
                "profile_id": [f"p{i}" for i in range(n)],
                "placement": ["hero"] * n,
                "experiment": ["none"] * n,
                "group": ["all"] * n,
                "offer_id": offers,
                "slot": np.zeros(n, dtype=np.int32),
                "propensity": np.full(n, 1 / 3),
                "policy_version": ["random-1"] * n,
                "features_hash": [features_hash(f) for f in features],
                "features": list(features),
                "eligible": [["a", "b", "c"]] * n,
            }
        )
    with OutcomeLogWriter(folder / "outcomes.parquet") as writer:
        ids = np.flatnonzero(converted)
        writer.append(
            {
                "decision_id": ids.astype(np.uint64),
                "offer_id": offers[ids],
                "time": T0 + 60.0 * ids + 30.0,
                "reward": np.ones(len(ids)),
                "value": np.ones(len(ids)),
            }
        )
    return catalog, folder, float(converted.mean())


def test_table_lists_every_estimator_next_to_the_logging_policy(logged: tuple[Path, Path, float]) -> None:
    catalog, folder, rate = logged
    policy = '{"type": "epsilon_greedy", "epsilon": 0.1}'
    result = CliRunner().invoke(
        main, ["evaluate", "--catalog", str(catalog), "--log", str(folder), "--policy", policy]
    )
    assert result.exit_code == 0, result.output
    assert "hero: 600 logged rows" in result.output and f"{rate:.4f}" in result.output
    assert "logging policy" in result.output and "catalog:" in result.output and "--policy:" in result.output
    for name in ("replay", "ips", "snips", "dr"):
        assert result.output.count(name) >= 2  # one row per policy


def test_json_output(logged: tuple[Path, Path, float]) -> None:
    catalog, folder, rate = logged
    args = [
        "evaluate",
        "--catalog",
        str(catalog),
        "--log",
        str(folder),
        "--placement",
        "hero",
        "--chunk-size",
        "50",
    ]
    result = CliRunner().invoke(main, [*args, "--format", "json", "--policy", '{"type": "lin_ucb"}'])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["format"] == "decision-engine-ope/1"
    (placement,) = document["placements"]
    assert placement["placement"] == "hero" and placement["logging"]["value"] == pytest.approx(rate)
    assert [p["source"] for p in placement["policies"]] == ["catalog", "--policy"]
    assert placement["policies"][0]["policy"]["type"] == "thompson"
    for policy in placement["policies"]:
        estimates = policy["estimates"]
        assert set(estimates) == {"replay", "ips", "snips", "dr"}
        assert estimates["ips"]["n"] == 600 and 0 < estimates["ips"]["ess"] <= 600
        for e in estimates.values():
            assert e["lower"] <= e["value"] <= e["upper"]
        # a policy that learns to favour offer b (30%) beats uniform random (~17%)
        assert estimates["dr"]["value"] > rate


def test_bad_input_is_reported(logged: tuple[Path, Path, float], tmp_path: Path) -> None:
    catalog, folder, _ = logged
    runner = CliRunner()
    base = ["evaluate", "--catalog", str(catalog)]
    result = runner.invoke(main, [*base, "--log", str(folder), "--policy", "{not json"])
    assert result.exit_code == 2 and "not JSON" in result.output
    result = runner.invoke(main, [*base, "--log", str(folder), "--policy", '{"alpha": 1}'])
    assert result.exit_code == 2 and '"type"' in result.output
    result = runner.invoke(main, [*base, "--log", str(tmp_path)])
    assert result.exit_code == 1 and "decisions.parquet" in result.output
    result = runner.invoke(main, [*base, "--log", str(folder), "--placement", "feed"])
    assert result.exit_code == 1 and "no decisions for placement 'feed'" in result.output
    result = runner.invoke(main, [*base, "--log", str(folder), "--policy", '{"type": "nonsense"}'])
    assert result.exit_code == 1 and "nonsense" in result.output


def test_seed_reaches_the_estimators(
    logged: tuple[Path, Path, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--seed` seeds the replay sampling and DR's cross-fitting folds, not only the bandit."""
    seen: list[object] = []
    real = evaluate_cli.evaluate_policy

    def spy(*args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs.get("options"))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_cli, "evaluate_policy", spy)
    catalog, folder, _ = logged
    result = CliRunner().invoke(
        main, ["evaluate", "--catalog", str(catalog), "--log", str(folder), "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    assert seen == [Options(seed=7)]


def obd_like_log(tmp_path: Path, n: int = 90) -> Path:
    """A small CSV in the Open Bandit Dataset's format (three items, four user features)."""
    rng = np.random.default_rng(1)
    lines = [
        "timestamp,item_id,position,click,propensity_score," + ",".join(f"user_feature_{j}" for j in range(4))
    ]
    for i in range(n):
        users = ",".join(f"u{j}{rng.integers(3)}" for j in range(4))
        click = int(rng.random() < 0.2)
        lines.append(f"2019-11-24 00:{i // 60:02d}:{i % 60:02d}+00:00,{i % 3},1,{click},0.3333,{users}")
    log = tmp_path / "obd.csv"
    log.write_text("\n".join(lines) + "\n")
    return log


def test_policy_features_absent_from_the_log_are_an_error(tmp_path: Path) -> None:
    """An OBD log has hashed user-feature columns, not the catalog's features: a catalog
    policy's `features: [age]` is refused, naming the features the log has."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        CATALOG.replace("policy: {type: thompson}", "policy: {type: lin_ucb, features: [age]}")
    )
    log = obd_like_log(tmp_path)
    runner = CliRunner()
    base = ["evaluate", "--log", str(log), "--chunk-size", "30"]
    result = runner.invoke(main, [*base, "--catalog", str(catalog)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert (
        "error: lin_ucb policy: the log has no feature 'age' (asked for ['age']); it has: "
        "user_feature_0, user_feature_1, user_feature_2, user_feature_3"
    ) in message
    # the log's own features are selected by name (all eight hashed columns of one)
    policy = '{"type": "lin_ucb", "features": ["user_feature_1"]}'
    result = runner.invoke(main, [*base, "--policy", policy, "--format", "json"])
    assert result.exit_code == 0, result.output
    (placement,) = json.loads(result.stdout)["placements"]
    assert placement["policies"][0]["policy"]["features"] == ["user_feature_1"]
    assert placement["policies"][0]["estimates"]["ips"]["n"] == 90


def test_features_of_an_engine_log_are_named_by_the_catalog(logged: tuple[Path, Path, float]) -> None:
    catalog, folder, _ = logged
    runner = CliRunner()
    good = '{"type": "lin_ucb", "features": ["spend"]}'
    result = runner.invoke(
        main, ["evaluate", "--catalog", str(catalog), "--log", str(folder), "--policy", good]
    )
    assert result.exit_code == 0, result.output
    bad = '{"type": "lin_ucb", "features": ["income"]}'
    result = runner.invoke(
        main, ["evaluate", "--catalog", str(catalog), "--log", str(folder), "--policy", bad]
    )
    assert result.exit_code == 1
    assert "the log has no feature 'income' (asked for ['income']); it has: age, spend" in result.output
    # without the catalog the logged vectors have no names: naming features is an error
    result = runner.invoke(main, ["evaluate", "--log", str(folder), "--policy", good])
    assert result.exit_code == 1
    assert "does not name its 2 feature columns (give the catalog it was logged with)" in result.output


def run_json(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["evaluate", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_policy_specs_alone_without_a_catalog(logged: tuple[Path, Path, float]) -> None:
    _, folder, rate = logged
    document = run_json(["--log", str(folder), "--policy", '{"type": "epsilon_greedy"}'])
    (placement,) = document["placements"]
    assert placement["placement"] == "hero" and placement["logging"]["value"] == pytest.approx(rate)
    assert [p["source"] for p in placement["policies"]] == ["--policy"]
    assert placement["policies"][0]["estimates"]["ips"]["n"] == 600
    result = CliRunner().invoke(main, ["evaluate", "--log", str(folder)])
    assert result.exit_code == 2 and "give --catalog, or at least one --policy to evaluate" in result.output


def test_train_fraction_evaluates_on_the_later_part(logged: tuple[Path, Path, float]) -> None:
    catalog, folder, _ = logged
    document = run_json(["--catalog", str(catalog), "--log", str(folder), "--train-fraction", "0.25"])
    (placement,) = document["placements"]
    assert document["settings"]["train_fraction"] == 0.25
    assert placement["logging"]["n"] == 450  # the last 75% of 600 rows
    estimates = placement["policies"][0]["estimates"]
    assert estimates["ips"]["n"] == estimates["dr"]["n"] == 450
    result = CliRunner().invoke(
        main, ["evaluate", "--log", str(folder), "--policy", "{}", "--train-fraction", "1"]
    )
    assert result.exit_code == 2 and "--train-fraction" in result.output


def test_bootstrap_intervals_and_weight_clipping(logged: tuple[Path, Path, float]) -> None:
    _, folder, _ = logged
    policy = '{"type": "epsilon_greedy", "epsilon": 0.1}'  # mostly offer b: weights near 3
    base = ["--log", str(folder), "--policy", policy, "--seed", "3", "--chunk-size", "50"]

    def ips_of(document: dict[str, Any]) -> dict[str, Any]:
        estimates: dict[str, Any] = document["placements"][0]["policies"][0]["estimates"]["ips"]
        return estimates

    normal = run_json(base)
    boot = run_json([*base, "--bootstrap", "200"])
    assert boot["settings"]["interval"] == "bootstrap" and boot["settings"]["n_bootstrap"] == 200
    assert ips_of(boot)["value"] == ips_of(normal)["value"]
    assert (ips_of(boot)["lower"], ips_of(boot)["upper"]) != (
        ips_of(normal)["lower"],
        ips_of(normal)["upper"],
    )
    assert ips_of(boot)["lower"] < ips_of(boot)["value"] < ips_of(boot)["upper"]
    clipped = run_json([*base, "--clip", "1.2"])  # weights up to 3 (1 / (1/3)) are cut to 1.2
    assert clipped["settings"]["max_weight"] == 1.2
    assert ips_of(clipped)["value"] < ips_of(normal)["value"]
    assert ips_of(clipped)["ess"] > ips_of(normal)["ess"]
    result = CliRunner().invoke(main, ["evaluate", *base, "--clip", "0"])
    assert result.exit_code == 2 and "--clip" in result.output


def test_warnings_are_printed_under_the_table(tmp_path: Path) -> None:
    """A log without a single click: every interval has zero width, and the table says so."""
    log = obd_like_log(tmp_path)
    text = log.read_text().splitlines()
    log.write_text("\n".join([text[0]] + [_no_click(line) for line in text[1:]]) + "\n")
    result = CliRunner().invoke(main, ["evaluate", "--log", str(log), "--policy", '{"type": "thompson"}'])
    assert result.exit_code == 0, result.output
    output = " ".join(result.stdout.split())
    assert "warning: logging policy: interval [0, 0] has zero width" in output
    assert "warning: --policy: thompson() ips: interval [0, 0] has zero width" in output
    assert "ips !" in output  # the row is flagged


def _no_click(line: str) -> str:
    fields = line.split(",")
    fields[3] = "0"
    return ",".join(fields)
