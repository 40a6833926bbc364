"""Writing profiles in process: rows of dicts, Arrow tables, numpy; partial updates; every bad
row a clear error of its own, nothing of it written, the other rows written."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from decision_engine import Engine, _core
from decision_engine.errors import InvalidInputError

from tests.profiles.conftest import T0


def features_of(engine: Engine, profile_id: str) -> dict[str, object]:
    profile = engine.profile(profile_id, now=T0)
    assert profile is not None, f"profile {profile_id!r} not held"
    features = profile["features"]
    assert isinstance(features, dict)
    return features


def test_upsert_dicts_then_read_back(engine: Engine) -> None:
    report = engine.upsert_profiles(
        [
            {"id": "ann", "age": 41, "spend": 120.5, "vip": True, "segment": "gold"},
            {"id": "bob", "age": 23},
        ]
    )
    assert (report.accepted, report.refused, report.rejected, report.duplicates) == (2, 0, [], 0)
    assert engine.profile_count == 2
    ann = features_of(engine, "ann")
    assert (ann["age"], ann["spend"], ann["vip"], ann["segment"]) == (41, 120.5, True, "gold")
    bob = features_of(engine, "bob")
    # what bob was not given has the declared defaults; computed ones have no events yet
    assert (bob["age"], bob["spend"], bob["vip"], bob["segment"]) == (23, 0, False, "basic")
    assert (bob["cart_adds_7d"], bob["spend_30d"], bob["last_cart_value"], bob["days_since_purchase"]) == (
        0,
        0,
        0,
        9999,
    )
    assert engine.profile("nobody") is None


def test_partial_update_changes_only_what_is_given(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "ann", "age": 41, "spend": 120.5, "segment": "gold"}])
    report = engine.upsert_profiles([{"id": "ann", "spend": 99.0}])
    assert report.accepted == 1
    ann = features_of(engine, "ann")
    assert (ann["age"], ann["spend"], ann["segment"]) == (41, 99.0, "gold")
    assert engine.profile_count == 1


def test_consents_and_purchases_in_an_upsert(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "ann", "consents": ["email"], "purchases": ["shoes"]}])
    ann = engine.profile("ann", now=T0)
    assert ann is not None
    assert ann["consents"] == ["email"]
    assert ann["purchases"] == ["shoes"]
    engine.upsert_profiles([{"id": "ann", "revoked_consents": ["email"]}])
    again = engine.profile("ann", now=T0)
    assert again is not None and again["consents"] == []


def test_upsert_arrow_table_with_nulls(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "ann", "age": 41, "spend": 10.0, "vip": True, "segment": "gold"}])
    table = pa.table(
        {
            "id": ["ann", "cid", "dan"],
            "age": pa.array([None, 30, 52], pa.int64()),  # null: ann keeps 41
            "spend": [None, 5.5, 7.25],
            "vip": [False, None, True],
            "segment": pa.array([None, "gold", "basic"]).dictionary_encode(),
        }
    )
    report = engine.upsert_profiles(table)
    assert (report.accepted, report.refused) == (3, 0)
    assert engine.profile_count == 3
    ann = features_of(engine, "ann")
    assert (ann["age"], ann["spend"], ann["vip"], ann["segment"]) == (41, 10.0, False, "gold")
    cid = features_of(engine, "cid")
    assert (cid["age"], cid["spend"], cid["vip"], cid["segment"]) == (30, 5.5, False, "gold")
    dan = features_of(engine, "dan")
    assert (dan["age"], dan["vip"], dan["segment"]) == (52, True, "basic")


def test_upsert_record_batch_and_polars(engine: Engine) -> None:
    batch = pa.record_batch({"id": ["a1", "a2"], "segment": ["gold", "basic"], "age": [20, 21]})
    assert engine.upsert_profiles(batch).accepted == 2
    polars = pytest.importorskip("polars")
    frame = polars.DataFrame({"id": ["p1", "p2"], "spend": [1.5, None], "segment": ["gold", None]})
    report = engine.upsert_profiles(frame)
    assert (report.accepted, report.refused) == (2, 0)
    assert features_of(engine, "a1")["segment"] == "gold"
    p1, p2 = features_of(engine, "p1"), features_of(engine, "p2")
    assert (p1["spend"], p1["segment"], p2["spend"], p2["segment"]) == (1.5, "gold", 0, "basic")


def test_arrow_table_with_list_columns(engine: Engine) -> None:
    table = pa.table({"id": ["ann"], "age": [30], "consents": [["email"]], "purchases": [["shoes"]]})
    assert engine.upsert_profiles(table).accepted == 1
    ann = engine.profile("ann", now=T0)
    assert ann is not None
    assert (ann["consents"], ann["purchases"]) == (["email"], ["shoes"])


def test_arrow_table_needs_an_id_column(engine: Engine) -> None:
    with pytest.raises(InvalidInputError, match="an 'id' column"):
        engine.upsert_profiles(pa.table({"age": [3]}))
    assert engine.profile_count == 0


def test_upsert_numpy_stored_features_in_schema_order(engine: Engine) -> None:
    assert engine.stored_features == ["age", "spend", "vip", "segment"]
    features = np.array([[41, 12.5, 1, 1], [23, np.nan, 0, np.nan]])  # segment: index 1 = gold
    report = engine.upsert_profiles(ids=["ann", "bob"], features=features)
    assert (report.accepted, report.refused) == (2, 0)
    ann, bob = features_of(engine, "ann"), features_of(engine, "bob")
    assert (ann["age"], ann["spend"], ann["vip"], ann["segment"]) == (41, 12.5, True, "gold")
    assert (bob["age"], bob["spend"], bob["vip"], bob["segment"]) == (23, 0, False, "basic")


def test_upsert_numpy_every_feature_with_nan_in_computed_columns(engine: Engine) -> None:
    nan = np.nan
    features = np.array([[50, 1.0, 0, 0, nan, nan, nan, nan]])
    assert features.shape[1] == len(engine.feature_names)
    assert engine.upsert_profiles(ids=["ann"], features=features).accepted == 1
    assert features_of(engine, "ann")["age"] == 50


def test_numpy_shapes_and_codes_are_checked(engine: Engine) -> None:
    with pytest.raises(InvalidInputError, match="one row per id"):
        engine.upsert_profiles(ids=["a"], features=np.zeros((2, 4)))
    with pytest.raises(InvalidInputError, match="give the 4 stored features"):
        engine.upsert_profiles(ids=["a"], features=np.zeros((1, 3)))
    with pytest.raises(InvalidInputError, match=r"feature 'segment' holds category codes 0\.\.1"):
        engine.upsert_profiles(ids=["a"], features=np.array([[1, 1, 0, 5]]))
    with pytest.raises(InvalidInputError, match="go together"):
        engine.upsert_profiles(ids=["a"])
    assert engine.profile_count == 0


def bad_rows() -> list[tuple[dict[str, object], str]]:
    """(row, a word its error must contain)."""
    too_long = "x" * (int(_core.LIMITS["max_profile_id_bytes"]) + 1)
    return [
        ({"id": "u1", "age": 30, "nope": 1}, "nope"),
        ({"id": "u2", "age": "old"}, "age"),
        ({"id": "u3", "spend": math.nan}, "spend"),
        ({"id": "u4", "segment": "platinum"}, "platinum"),
        ({"id": "", "age": 3}, "id"),
        ({"id": too_long, "age": 3}, "id"),
        ({"id": "u7", "age": 50, "cart_adds_7d": 3}, "cart_adds_7d"),
    ]


def test_bad_rows_are_rejected_one_by_one(engine: Engine) -> None:
    cases = bad_rows()
    rows = [{"id": "ok0", "age": 20}, *[row for row, _ in cases], {"id": "ok1", "age": 21}]
    report = engine.upsert_profiles(rows)
    assert report.accepted == 2
    assert report.refused == len(cases)
    assert [index for index, _, _ in report.rejected] == list(range(1, len(cases) + 1))
    for (index, rejected_id, message), (row, word) in zip(report.rejected, cases, strict=True):
        assert rejected_id == row["id"] or (
            len(str(row["id"])) > 256 and str(row["id"]).startswith(rejected_id)
        )
        assert word in message, (index, message)
    # nothing of a rejected row was written, the good rows were
    assert engine.profile_count == 2
    assert {features_of(engine, "ok0")["age"], features_of(engine, "ok1")["age"]} == {20, 21}
    for row, _ in cases:
        if row["id"] and len(str(row["id"])) <= 256:
            assert engine.profile(str(row["id"])) is None
    with pytest.raises(InvalidInputError, match="must not be empty"):
        engine.profile("")


def test_bad_row_of_an_existing_profile_changes_nothing(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "ann", "age": 41, "segment": "gold"}])
    report = engine.upsert_profiles([{"id": "ann", "age": 99, "segment": "platinum"}])
    assert (report.accepted, report.refused) == (0, 1)
    ann = features_of(engine, "ann")
    assert (ann["age"], ann["segment"]) == (41, "gold")


def test_bad_arrow_rows_are_rejected_per_row(engine: Engine) -> None:
    table = pa.table(
        {
            "id": ["ok0", "", "u2", "ok1"],
            "spend": [1.0, 2.0, math.nan, 4.0],
            "segment": ["gold", "gold", "gold", "silver"],
        }
    )
    report = engine.upsert_profiles(table)
    assert report.accepted == 1
    assert [(index, rejected_id) for index, rejected_id, _ in report.rejected] == [
        (1, ""),
        (2, "u2"),
        (3, "ok1"),
    ]
    assert "silver" in report.rejected[2][2]
    assert engine.profile_count == 1


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("nope", [1, 2], "unknown feature 'nope'"),
        ("age", ["x", "y"], "feature 'age' is a number or flag; its column has text"),
        ("segment", [1, 0], "feature 'segment' is a category; its column must hold value names"),
        ("cart_adds_7d", [1, 2], "feature 'cart_adds_7d' is computed from events; it cannot be written"),
    ],
)
def test_a_bad_arrow_column_refuses_the_whole_table(
    engine: Engine, column: str, values: list[object], message: str
) -> None:
    table = pa.table({"id": ["a", "b"], "spend": [1.0, 2.0], column: values})
    with pytest.raises(InvalidInputError, match=message):
        engine.upsert_profiles(table)
    assert engine.profile_count == 0
