"""`decision-engine evaluate` on a small log written here."""

from __future__ import annotations

import json
import logging
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


def test_policy_features_absent_from_the_log_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An OBD log has hashed user-feature columns, not the catalog's features: a catalog
    policy's `features` cannot select columns, which the table, the JSON and the log say."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        CATALOG.replace("policy: {type: thompson}", "policy: {type: lin_ucb, features: [age]}")
    )
    rng = np.random.default_rng(1)
    n = 90
    lines = [
        "timestamp,item_id,position,click,propensity_score," + ",".join(f"user_feature_{j}" for j in range(4))
    ]
    for i in range(n):
        users = ",".join(f"u{j}{rng.integers(3)}" for j in range(4))
        click = int(rng.random() < 0.2)
        lines.append(f"2019-11-24 00:{i // 60:02d}:{i % 60:02d}+00:00,{i % 3},1,{click},0.3333,{users}")
    log = tmp_path / "obd.csv"
    log.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    base = ["evaluate", "--catalog", str(catalog), "--log", str(log), "--chunk-size", "30"]
    with caplog.at_level(logging.WARNING, logger="decision_engine.cli.evaluate"):
        result = runner.invoke(main, base)
    assert result.exit_code == 0, result.output
    expected = (
        "lin_ucb: features ['age'] ignored: the logged vectors have 32 columns, "
        "not one per catalog feature (2)"
    )
    assert expected in " ".join(result.stdout.split())
    assert "reads all 32 logged columns instead" in " ".join(result.stdout.split())
    assert any(expected in record.getMessage() for record in caplog.records)
    result = runner.invoke(main, [*base, "--format", "json"])
    assert result.exit_code == 0, result.output
    (placement,) = json.loads(result.stdout)["placements"]
    assert placement["policies"][0]["note"].startswith(expected)
