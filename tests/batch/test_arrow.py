"""Arrow in, Arrow out: decide_arrow against decide_batch, pyarrow and polars inputs, bad input
named by column and row, and BatchDecider's pickling."""

import pickle

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from decision_engine import Engine
from decision_engine.batch import BatchDecider, decide_arrow, feature_matrix, output_schema
from decision_engine.errors import InvalidInputError, UnknownPlacementError

from seeds.generator import DEMO_CATALOG, generate_profiles
from tests.batch.profiles import profiles_table
from tests.clock import NOW

PLACEMENT = "email_weekly"  # two slots, needs email consent
N = 700


@pytest.fixture
def make_engine():
    return lambda seed=5: Engine(DEMO_CATALOG, seed=seed, clock="simulated")


@pytest.fixture
def table(make_engine):
    return profiles_table(make_engine(), N, seed=3)


def email_consents(engine, n):
    mask = np.zeros((n, len(engine.channels)), dtype=bool)
    mask[:, engine.channels.index("email")] = np.arange(n) % 2 == 0
    return mask


def test_decide_arrow_equals_decide_batch_on_the_same_rows(make_engine, table):
    engine, reference = make_engine(), make_engine()
    out = decide_arrow(engine, PLACEMENT, table, consents={"email": "email_ok"}, now=NOW)
    expected = reference.decide_batch(
        PLACEMENT, generate_profiles(N, 3), consents=email_consents(reference, N), now=NOW
    )

    assert isinstance(out, pa.RecordBatch) and out.num_rows == N
    assert out.schema == output_schema(engine, PLACEMENT)
    assert out.schema.names == [
        "profile_id", "decision_id", "offer_0", "score_0", "propensity_0",
        "offer_1", "score_1", "propensity_1", "experiment", "experiment_group",
    ]  # fmt: skip
    assert out.column("profile_id").to_pylist() == [f"p{i}" for i in range(N)]
    assert np.array_equal(out.column("decision_id").to_numpy(), expected.decision_ids)
    filled = expected.offers >= 0
    assert 0 < filled.sum() < filled.size, "some slots filled, some empty (no consent)"
    for slot in range(2):
        offers = out.column(f"offer_{slot}")
        ids = np.where(filled[:, slot], reference.offer_id_array(expected.offers)[:, slot], None)
        assert offers.to_pylist() == ids.tolist()
        for name, values in (("score", expected.scores), ("propensity", expected.propensities)):
            column = out.column(f"{name}_{slot}")
            assert column.type == pa.float32()
            assert np.array_equal(pc.is_valid(column).to_numpy(zero_copy_only=False), filled[:, slot])
            assert np.array_equal(column.drop_null().to_numpy(), values[filled[:, slot], slot])
    assert out.column("experiment_group").null_count == N  # the demo runs no experiment


def test_profiles_with_ids_get_their_experiment_group():
    from decision_engine import Engine, parse_catalog

    from tests.batch.profiles import HOLDOUT_CATALOG

    catalog = parse_catalog(HOLDOUT_CATALOG, "inline.yaml")
    engine = Engine(catalog, seed=5, clock="simulated")
    ids = [f"c{i}" for i in range(400)]
    table = pa.table({"profile_id": ids, "age": pa.array(np.full(400, 30), pa.int64())})
    out = decide_arrow(engine, "hero", table, now=NOW)
    assert set(out.column("experiment").to_pylist()) == {"universal_holdout"}
    groups = out.column("experiment_group").to_pylist()
    assert engine.contact_history("c0") == [], "a batch by default keeps no contact history"
    single = [
        dict(engine.decide("hero", {"age": 30}, profile_id=i, now=NOW).experiments)["universal_holdout"]
        for i in ids[:50]
    ]
    assert groups[:50] == single, "the groups a single decision by id gets"
    holdout = np.array(groups) == "holdout"
    assert 40 < holdout.sum() < 120
    # The holdout gets the non-personalized default: the highest value x weight.
    assert set(np.array(out.column("offer_0").to_pylist())[holdout]) == {"rich"}


def test_feature_matrix_reads_columns_by_name_and_category_names(make_engine, table):
    engine = make_engine()
    shuffled = table.select(list(reversed(table.column_names)))  # column order does not matter
    assert np.array_equal(feature_matrix(shuffled, engine), generate_profiles(N, 3))
    codes = table
    for feature in engine.catalog.model.features:
        if feature.values:
            position = codes.schema.get_field_index(feature.name)
            code = pc.index_in(codes.column(feature.name), value_set=pa.array(list(feature.values)))
            codes = codes.set_column(position, feature.name, code.cast(pa.int8()))
    assert codes.schema.field("segment").type == pa.int8()
    assert np.array_equal(feature_matrix(codes, engine), generate_profiles(N, 3))


@pytest.mark.parametrize("kind", ["record_batch", "polars", "polars_categorical", "reader"])
def test_any_arrow_input_gives_the_same_decisions(make_engine, table, kind):
    if kind == "record_batch":
        data = table.combine_chunks().to_batches()[0]
    elif kind == "polars":
        data = pl.from_arrow(table)
    elif kind == "polars_categorical":
        data = pl.from_arrow(table).with_columns(pl.col("segment", "region").cast(pl.Categorical))
        assert pa.types.is_dictionary(pa.table(data).schema.field("segment").type)
    else:
        data = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=100))
    expected = decide_arrow(make_engine(), PLACEMENT, table, consents={"email": "email_ok"}, now=NOW)
    out = decide_arrow(make_engine(), PLACEMENT, data, consents={"email": "email_ok"}, now=NOW)
    assert out.num_rows == N and out.equals(expected)


def test_engine_decide_arrow_and_options(make_engine, table):
    expected = decide_arrow(make_engine(), PLACEMENT, table, consents={"email": "email_ok"}, now=NOW)
    out = make_engine().decide_arrow(PLACEMENT, table, consents={"email": "email_ok"}, now=NOW)
    assert out.equals(expected)

    renamed = table.rename_columns(["email" if n == "email_ok" else n for n in table.column_names])
    by_channel = decide_arrow(make_engine(), PLACEMENT, renamed, consents=["email"], now=NOW)
    assert by_channel.equals(expected)

    bare = decide_arrow(make_engine(), PLACEMENT, table, id_column=None, propensities=False, now=NOW)
    assert "propensity_0" not in bare.schema.names and bare.column("profile_id").null_count == N
    assert bare.column("offer_0").null_count == N, "without consents an email decides nothing"


def replace(table, name, values, kind=None):
    position = table.schema.get_field_index(name)
    return table.set_column(position, name, pa.array(values, kind))


def one_bad(row, bad, good):
    return [bad if i == row else good for i in range(N)]


BAD_INPUTS = {
    "missing features": (
        lambda t: t.drop_columns(["segment", "age"]),
        "missing feature columns: age, segment",
    ),
    "wrong type": (
        lambda t: replace(t, "age", [str(v) for v in t["age"].to_pylist()]),
        "column 'age' must hold int values, got string",
    ),
    "null": (
        lambda t: replace(t, "income_monthly", one_bad(417, None, 1.0), pa.float64()),
        "column 'income_monthly' row 1417: null",
    ),
    "unknown category": (
        lambda t: replace(t, "segment", one_bad(9, "golden", "gold")),
        "column 'segment' row 1009: 'golden' is not one of basic, silver, gold, platinum",
    ),
    "bad category code": (
        lambda t: replace(t, "segment", np.full(N, 7, np.int64)),
        "feature 'segment' in row 1000 (profile 'p0'): 7 is not a category code 0..3",
    ),
    "NaN": (
        lambda t: replace(t, "credit_score", one_bad(33, np.nan, 600.0)),
        "feature 'credit_score' in row 1033 (profile 'p33'): NaN is not a finite number",
    ),
    "consent not bool": (
        lambda t: replace(t, "email_ok", np.ones(N, np.int64)),
        "consent column 'email_ok' must be bool, got int64",
    ),
    "null id": (
        lambda t: replace(t, "profile_id", one_bad(0, None, "p"), pa.string()),
        "column 'profile_id' row 1000: null",
    ),
    "missing id": (lambda t: t.drop_columns(["profile_id"]), "missing column 'profile_id'"),
}


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_names_the_column_and_the_row(make_engine, table, change, message):
    with pytest.raises(InvalidInputError) as caught:
        decide_arrow(make_engine(), PLACEMENT, change(table), consents={"email": "email_ok"}, row_offset=1000)
    assert str(caught.value) == message


def test_bad_arguments(make_engine, table):
    engine = make_engine()
    with pytest.raises(InvalidInputError, match="unknown channel 'fax'"):
        decide_arrow(engine, PLACEMENT, table, consents={"fax": "email_ok"})
    with pytest.raises(InvalidInputError, match="expected an Arrow table or record batch"):
        decide_arrow(engine, PLACEMENT, {"age": [1, 2]})
    with pytest.raises(UnknownPlacementError, match="unknown placement 'nowhere'"):
        decide_arrow(engine, "nowhere", table)


def test_batch_decider_pickles_as_its_arguments(table, tmp_path):
    options = dict(seed=5, consents={"email": "email_ok"}, now=NOW)
    decider = BatchDecider(DEMO_CATALOG, PLACEMENT, **options)
    copy = pickle.loads(pickle.dumps(decider))
    assert len(pickle.dumps(decider)) < 2_000, "the arguments travel, not the engine"
    assert copy.engine is not decider.engine
    first, again = decider(table), copy(table)
    assert isinstance(first, pa.Table) and first.equals(again)
    assert isinstance(decider(table.to_batches()[0]), pa.RecordBatch)

    tagged = BatchDecider(DEMO_CATALOG, PLACEMENT, unique_ids=True, **options)(table)
    ids = tagged.column("decision_id").to_numpy()
    assert np.all(ids >> 40 == ids[0] >> 40) and ids[0] >> 40 > 0
    assert np.array_equal(ids & ((1 << 40) - 1), first.column("decision_id").to_numpy())
    assert tagged.drop_columns(["decision_id"]).equals(first.drop_columns(["decision_id"]))
