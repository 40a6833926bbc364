"""The engine's decision log with the optional OPE columns, read back as a LoggedBandit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from decision_engine.decision_log import load_decision_log
from decision_engine.decision_log.format import (
    DecisionLogWriter,
    OutcomeLogWriter,
    features_hash,
    read_decisions,
)
from decision_engine.errors import InvalidInputError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def row(decision_id: int, offer: str, **extra: object) -> dict[str, object]:
    return {
        "decision_id": decision_id,
        "time": T0 + timedelta(minutes=decision_id),
        "profile_id": f"p{decision_id}",
        "placement": "hero",
        "experiment": "holdout",
        "group": "personalized",
        "offer_id": offer,
        "slot": 0,
        "propensity": 0.5,
        **extra,
    }


def write_outcomes(path: Path, converted: list[tuple[int, str]]) -> None:
    with OutcomeLogWriter(path) as writer:
        writer.append(
            [
                {
                    "decision_id": d,
                    "offer_id": o,
                    "time": T0 + timedelta(hours=d),
                    "reward": 1.0,
                    "value": 1.0,
                }
                for d, o in converted
            ]
        )


def test_features_hash_is_xxh3_of_the_float32_bytes() -> None:
    import xxhash

    vector = [1.0, 2.5, -3.0]
    assert features_hash(vector) == xxhash.xxh3_64_hexdigest(np.array(vector, np.float32).tobytes())
    assert features_hash(np.array(vector, np.float64)) == features_hash(vector)
    assert features_hash([1.0, 2.5, -3.1]) != features_hash(vector)


def test_optional_columns_round_trip_and_load(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions.parquet"
    features = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    with DecisionLogWriter(decisions, ope=True, features=True) as writer:
        writer.append(
            [
                row(
                    i,
                    offer,
                    policy_version="v7",
                    features_hash=features_hash(features[i]),
                    features=features[i],
                    eligible=eligible,
                )
                for i, (offer, eligible) in enumerate(
                    [("a", ["a", "b"]), ("b", ["a", "b", "c"]), ("c", ["c"])]
                )
            ]
        )
        writer.append([row(3, "a")])  # OPE columns left out: null
    table = read_decisions(decisions, optional=True)
    assert table["policy_version"].to_pylist() == ["v7", "v7", "v7", None]
    assert table["eligible"].to_pylist()[0] == ["a", "b"]
    assert read_decisions(decisions).column_names[-1] == "propensity"  # the default stays as before
    write_outcomes(tmp_path / "outcomes.parquet", [(1, "b"), (2, "c")])
    data = load_decision_log(decisions, tmp_path / "outcomes.parquet", offers=["a", "b", "c"])
    assert data.n == 4 and data.action.tolist() == [0, 1, 2, 0]
    assert data.reward.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert data.X is None and data.mask is None  # the last row has neither


def test_full_rows_give_context_and_mask(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions.parquet"
    with DecisionLogWriter(decisions, ope=True, features=True) as writer:
        writer.append(
            {
                "decision_id": np.arange(2, dtype=np.uint64),
                "time": np.array([T0.timestamp(), T0.timestamp() + 1]),
                "profile_id": ["p0", "p1"],
                "placement": ["hero"] * 2,
                "experiment": ["holdout"] * 2,
                "group": ["personalized"] * 2,
                "offer_id": ["b", "a"],
                "slot": np.zeros(2, dtype=np.int32),
                "propensity": [0.5, 1.0],
                "features": [[0.5, 1.0], [2.0, 3.0]],
                "eligible": [["a", "b"], ["a"]],
            }
        )
    write_outcomes(tmp_path / "outcomes.parquet", [(0, "b")])
    data = load_decision_log(decisions, tmp_path / "outcomes.parquet")
    assert data.action_ids == ("a", "b")
    assert data.X is not None and data.X.tolist() == [[0.5, 1.0], [2.0, 3.0]]
    assert data.mask is not None and data.mask.tolist() == [[True, True], [True, False]]
    with pytest.raises(InvalidInputError, match=r"offers \['b'\]"):
        load_decision_log(decisions, tmp_path / "outcomes.parquet", offers=["a"])


def test_old_files_still_read(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions.parquet"
    with DecisionLogWriter(decisions) as writer:
        writer.append([row(0, "a"), row(1, "b"), {**row(1, "b"), "experiment": "other"}])
    write_outcomes(tmp_path / "outcomes.parquet", [(0, "a")])
    assert "policy_version" not in read_decisions(decisions, optional=True).column_names
    data = load_decision_log(decisions, tmp_path / "outcomes.parquet", placement="hero")
    assert data.n == 2  # the decision logged under two experiments counts once
    assert data.reward.tolist() == [1.0, 0.0]
    with pytest.raises(InvalidInputError, match="no decisions for placement 'feed'"):
        load_decision_log(decisions, tmp_path / "outcomes.parquet", placement="feed")
