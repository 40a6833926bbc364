"""The Parquet decision log: writing in batches, reading back, attributing outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from decision_engine.decision_log.format import (
    DECISIONS_SCHEMA,
    DecisionLogWriter,
    OutcomeLogWriter,
    join_outcomes,
    parse_duration,
    read_decisions,
    read_experiments,
    read_outcomes,
)
from decision_engine.errors import InvalidInputError
from decision_engine.experiments.assignment import Experiment

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def decision(decision_id: int, offer: str, slot: int = 0, at: datetime = T0) -> dict[str, object]:
    return {
        "decision_id": decision_id,
        "time": at,
        "profile_id": f"p{decision_id}",
        "placement": "web_home_hero",
        "experiment": "holdout",
        "group": "personalized",
        "offer_id": offer,
        "slot": slot,
        "propensity": 0.5,
    }


def outcome(decision_id: int, offer: str | None, after: timedelta, reward: float = 1.0) -> dict[str, object]:
    return {
        "decision_id": decision_id,
        "offer_id": offer,
        "time": T0 + after,
        "reward": reward,
        "value": 10.0,
    }


def test_writer_appends_rows_and_numpy_batches(tmp_path: Path) -> None:
    path = tmp_path / "decisions.parquet"
    experiment = Experiment.create("holdout", {"holdout": 0.05, "personalized": 0.95}, control="holdout")
    with DecisionLogWriter(path, [experiment]) as writer:
        writer.append([decision(1, "a"), decision(1, "b", slot=1)])
        assert not path.exists() and (tmp_path / "decisions.parquet.partial").exists()
        writer.append(
            {
                "decision_id": np.array([2, 3], dtype=np.uint64),
                "time": np.array([T0.timestamp(), T0.timestamp() + 60.0]),
                "profile_id": np.array(["p2", "p3"]),
                "placement": ["web_home_hero"] * 2,
                "experiment": ["holdout"] * 2,
                "group": np.array(["holdout", "personalized"]),
                "offer_id": ["default", "a"],
                "slot": np.zeros(2, dtype=np.int32),
                "propensity": np.array([1.0, 0.25]),
            }
        )
    assert writer.rows_written == 4 and path.exists()
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    table = read_decisions(path)
    assert table.schema.equals(DECISIONS_SCHEMA.remove_metadata())
    assert table["decision_id"].to_pylist() == [1, 1, 2, 3]
    assert table["time"].to_pylist()[2:] == [T0, T0 + timedelta(minutes=1)]
    assert read_experiments(path) == [experiment]


def test_writer_rejects_wrong_columns(tmp_path: Path) -> None:
    with DecisionLogWriter(tmp_path / "d.parquet") as writer:
        with pytest.raises(InvalidInputError, match="missing"):
            writer.append({"decision_id": [1]})
        with pytest.raises(InvalidInputError, match="schema"):
            writer.append([{**decision(1, "a"), "slot": "first"}])
    with OutcomeLogWriter(tmp_path / "o.parquet") as writer:
        writer.append([outcome(1, "a", timedelta(hours=1))])
    with pytest.raises(InvalidInputError, match="missing columns"):
        read_decisions(tmp_path / "o.parquet")


def test_join_keeps_outcomes_within_the_window(tmp_path: Path) -> None:
    with DecisionLogWriter(tmp_path / "d.parquet") as writer:
        writer.append(
            [decision(1, "a"), decision(1, "b", slot=1), decision(2, "a"), decision(3, "c"), decision(4, "d")]
        )
    with OutcomeLogWriter(tmp_path / "o.parquet") as writer:
        writer.append(
            [
                outcome(1, "b", timedelta(days=2)),  # slot 1 converts
                outcome(2, "a", timedelta(days=8)),  # after the 7-day window
                outcome(3, None, timedelta(hours=5)),  # no offer: counts for slot 0
                outcome(4, "d", -timedelta(hours=1)),  # before the decision: ignored
                outcome(99, "a", timedelta(hours=1)),  # unknown decision: ignored
                outcome(1, "b", timedelta(days=3), reward=0.0),  # a second outcome for the same offer
            ]
        )
    joined = join_outcomes(
        read_decisions(tmp_path / "d.parquet"), read_outcomes(tmp_path / "o.parquet"), parse_duration("7d")
    )
    rows = {(r["decision_id"], r["offer_id"]): r for r in joined.to_pylist()}
    assert len(rows) == 5
    assert rows[(1, "b")]["converted"] and rows[(1, "b")]["outcomes"] == 2 and rows[(1, "b")]["value"] == 20.0
    assert not rows[(1, "a")]["converted"]
    assert not rows[(2, "a")]["converted"] and rows[(2, "a")]["outcomes"] == 0
    assert rows[(3, "c")]["converted"] and rows[(3, "c")]["value"] == 10.0
    assert not rows[(4, "d")]["converted"]
    widened = join_outcomes(
        read_decisions(tmp_path / "d.parquet"), read_outcomes(tmp_path / "o.parquet"), timedelta(days=9)
    )
    assert widened["converted"].to_pylist().count(True) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("1d12h", timedelta(hours=36)),
        ("2w", timedelta(days=14)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "seven days", "7d x"])
def test_parse_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(InvalidInputError, match="duration"):
        parse_duration(text)
