"""Arrow in, Arrow out: decisions for a table of profiles with named feature columns.

`decide_arrow` takes anything that speaks the Arrow PyCapsule interface (a pyarrow Table or
RecordBatch, a polars DataFrame, a RecordBatchReader), picks the catalog's feature columns by
name, lays them out with `feature_matrix` and decides them with `Engine.decide_batch` on all
cores. The result is one record batch (`output_schema`)::

    profile_id string | decision_id uint64 |
    offer_<s> string | score_<s> float32 | propensity_<s> float32   (per slot s = 0, 1, ...) |
    experiment string | experiment_group string | [features_hash string]

An empty slot has a null offer, score and propensity. `feature_matrix` is the one place a
batch becomes the core's float32 matrix, so a column path in the core can replace it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from decision_engine.engine import Timestamp
from decision_engine.errors import InvalidInputError

if TYPE_CHECKING:
    from decision_engine.engine import Engine

Consents = Mapping[str, str] | Sequence[str] | None
"""Channel -> bool column of the profiles (a sequence: columns named as the channels)."""

_CORE_ROW = re.compile(r"\bin row (\d+)")


def as_table(data: Any) -> pa.Table:
    """``data`` as a pyarrow Table, without copying: a Table, a RecordBatch, or any object with
    ``__arrow_c_stream__`` (polars DataFrame, RecordBatchReader) or ``__arrow_c_array__``."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    if hasattr(data, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(data)])
    raise InvalidInputError(
        f"expected an Arrow table or record batch (pyarrow, polars, anything with __arrow_c_stream__), "
        f"got {type(data).__name__}"
    )


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind))


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind))


def _first(mask: pa.ChunkedArray[Any] | pa.Array[Any]) -> int:
    return int(pc.index(mask, True).as_py())


def _column(table: pa.Table, name: str, row_offset: int) -> pa.ChunkedArray[Any]:
    """A present column without nulls (the row of the first null is named)."""
    if name not in table.column_names:
        raise InvalidInputError(f"missing column '{name}'")
    column = table.column(name)
    if column.null_count:
        raise InvalidInputError(f"column '{name}' row {row_offset + _first(pc.is_null(column))}: null")
    return column


def _codes(
    column: pa.ChunkedArray[Any], name: str, values: Sequence[str], row_offset: int
) -> npt.NDArray[Any]:
    names = pa.array(list(values), pa.string())
    codes: pa.ChunkedArray[Any] | pa.Array[Any]
    if pa.types.is_dictionary(column.type):  # look the dictionary up, then take by index
        chunks = cast("list[pa.DictionaryArray[Any, Any]]", column.chunks)
        looked_up = [
            pc.take(pc.index_in(c.dictionary.cast(pa.string()), value_set=names), c.indices) for c in chunks
        ]
        codes = pa.chunked_array(looked_up, pa.int32())
    else:
        codes = pc.index_in(column.cast(pa.string()), value_set=names)
    if codes.null_count:
        row = _first(pc.is_null(codes))
        value = column[row].as_py()
        raise InvalidInputError(
            f"column '{name}' row {row_offset + row}: {value!r} is not one of {', '.join(values)}"
        )
    return codes.to_numpy()


def feature_matrix(data: Any, engine: Engine, *, row_offset: int = 0) -> npt.NDArray[np.float32]:
    """The (rows x features) float32 matrix of the catalog's features, read by name.

    Numbers and bools are taken as they are; a category column holds the value names
    (string or dictionary, encoded with the catalog's values) or their integer codes.
    Other columns are ignored. A missing column, a column of another type, a null or an
    unknown category is an InvalidInputError naming the column (and the row, counted from
    ``row_offset``); NaN and out-of-range values are the core's to refuse.
    """
    table = as_table(data)
    missing = [name for name in engine.feature_names if name not in table.column_names]
    if missing:
        raise InvalidInputError(f"missing feature columns: {', '.join(missing)}")
    matrix = np.empty((table.num_rows, len(engine.feature_names)), dtype=np.float32)
    declared = {feature.name: feature for feature in engine.catalog.model.features}
    for j, feature in enumerate(declared[name] for name in engine.feature_names):
        column = _column(table, feature.name, row_offset)
        if feature.values and _is_text(column.type):
            matrix[:, j] = _codes(column, feature.name, feature.values, row_offset)
        elif _is_number(column.type):
            matrix[:, j] = column.to_numpy()
        else:
            wanted = "category names or codes" if feature.values else f"{feature.type} values"
            raise InvalidInputError(f"column '{feature.name}' must hold {wanted}, got {column.type}")
    return matrix


def consent_matrix(
    data: Any, engine: Engine, consents: Consents, *, row_offset: int = 0
) -> npt.NDArray[np.bool_] | None:
    """The (rows x channels) consents in ``engine.channels`` order, from bool columns."""
    if consents is None:
        return None
    table = as_table(data)
    pairs = (
        list(consents.items())
        if isinstance(consents, Mapping)
        else [(c, c) for c in ([consents] if isinstance(consents, str) else consents)]
    )
    mask = np.zeros((table.num_rows, len(engine.channels)), dtype=np.bool_)
    for channel, name in pairs:
        if channel not in engine.channels:
            raise InvalidInputError(
                f"consents: unknown channel '{channel}' (channels: {', '.join(engine.channels)})"
            )
        column = _column(table, name, row_offset)
        if not pa.types.is_boolean(column.type):
            raise InvalidInputError(f"consent column '{name}' must be bool, got {column.type}")
        mask[:, engine.channels.index(channel)] = column.to_numpy()
    return mask


def _profile_ids(table: pa.Table, id_column: str | None, row_offset: int) -> pa.Array[Any]:
    if id_column is None:
        return pa.nulls(table.num_rows, pa.string())
    column = _column(table, id_column, row_offset)
    if not (_is_text(column.type) or pa.types.is_integer(column.type)):
        raise InvalidInputError(f"id column '{id_column}' must hold strings or integers, got {column.type}")
    return column.cast(pa.string()).combine_chunks()


def _slots(engine: Engine, placement: str) -> int:
    if placement not in engine.placements:  # the core says how it is unknown
        engine.decide_batch(placement, np.empty((0, len(engine.feature_names)), np.float32))
    return engine.placements[placement][1]


def output_schema(
    engine: Engine, placement: str, *, propensities: bool = True, features_hash: bool = False
) -> pa.Schema:
    """The schema of `decide_arrow`'s record batches for ``placement``."""
    fields: list[pa.Field[Any]] = [pa.field("profile_id", pa.string())]
    fields.append(pa.field("decision_id", pa.uint64(), nullable=False))
    for slot in range(_slots(engine, placement)):
        fields += [pa.field(f"offer_{slot}", pa.string()), pa.field(f"score_{slot}", pa.float32())]
        if propensities:
            fields.append(pa.field(f"propensity_{slot}", pa.float32()))
    fields += [pa.field("experiment", pa.string()), pa.field("experiment_group", pa.string())]
    if features_hash:
        fields.append(pa.field("features_hash", pa.string()))
    return pa.schema(fields)


def _hashes(matrix: npt.NDArray[np.float32]) -> pa.Array[Any]:
    """`decision_engine.decision_log.features_hash` of every row."""
    data, width = matrix.tobytes(), matrix.shape[1] * 4
    return pa.array([xxhash.xxh3_64_hexdigest(data[i : i + width]) for i in range(0, len(data), width)])


def _core_error(err: InvalidInputError, ids: pa.Array[Any], row_offset: int) -> InvalidInputError:
    """The core's message with its batch row counted from ``row_offset`` and the profile id."""
    found = _CORE_ROW.search(str(err))
    if found is None:
        return err
    row = int(found.group(1))
    who = ids[row].as_py() if row < len(ids) else None
    label = f"in row {row + row_offset}" + (f" (profile '{who}')" if who is not None else "")
    return InvalidInputError(_CORE_ROW.sub(label, str(err), count=1))


def _experiment_columns(
    engine: Engine, groups: npt.NDArray[np.int32] | None, rows: int
) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """Each row's experiment and group: the first experiment of the catalog it is in."""
    if groups is None or not (groups >= 0).any():
        return pa.nulls(rows, pa.string()), pa.nulls(rows, pa.string())
    experiment = np.full(rows, None, dtype=object)
    group = np.full(rows, None, dtype=object)
    # Last to first, so that the first experiment a row is in is the one it keeps.
    for e, (name, group_names) in reversed(list(enumerate(engine.experiments))):
        member = groups[:, e] >= 0
        experiment[member] = name
        group[member] = np.asarray(group_names, dtype=object)[groups[member, e]]
    return pa.array(experiment, pa.string()), pa.array(group, pa.string())


def decide_arrow(
    engine: Engine,
    placement: str,
    data: Any,
    *,
    id_column: str | None = "profile_id",
    consents: Consents = None,
    now: Timestamp = None,
    propensities: bool = True,
    threads: int | None = None,
    features_hash: bool = False,
    row_offset: int = 0,
    stream: int | None = None,
    prices: Mapping[str, float] | None = None,
    quota: Mapping[str, int] | None = None,
    contact_history: bool = False,
) -> pa.RecordBatch:
    """Decides ``placement`` for every row of ``data`` (see the module docstring for the output).

    ``id_column`` names the profile ids (strings or integers; None: null ids). They go to
    the core: each profile gets its experiment group (``experiment``, ``experiment_group``;
    null outside every experiment), and with ``stream`` its own random stream
    (`Engine.decide_batch`). ``contact_history=True`` also applies and records the
    engine's contact history by them, as a decision by id does; by default the batch leaves
    none behind (a campaign's engine lives for one run). ``consents`` names bool columns
    per channel (without it no profile has consent). ``prices`` and ``quota`` are a
    campaign's budget prices and this batch's share of the budgets (`Engine.decide_batch`).
    ``features_hash=True`` adds the hash the decision log joins features by.
    ``row_offset`` is the first row's number in error messages (a batch of a larger file).
    """
    table = as_table(data)
    schema = output_schema(engine, placement, propensities=propensities, features_hash=features_hash)
    ids = _profile_ids(table, id_column, row_offset)
    matrix = feature_matrix(table, engine, row_offset=row_offset)
    mask = consent_matrix(table, engine, consents, row_offset=row_offset)
    try:
        decision = engine.decide_batch(
            placement,
            matrix,
            consents=mask,
            now=now,
            threads=threads,
            propensities=propensities,
            profile_ids=None if id_column is None else cast("list[str]", ids.to_pylist()),
            stream=stream if id_column is not None else None,
            prices=prices,
            quota=quota,
            contact_history=contact_history,
        )
    except InvalidInputError as err:
        raise _core_error(err, ids, row_offset) from None
    offers, empty = decision.offers, decision.offers < 0
    offer_ids = pa.array(engine.offer_ids, pa.string())
    columns: list[pa.Array[Any]] = [ids, pa.array(decision.decision_ids, pa.uint64())]
    for slot in range(offers.shape[1]):
        hole = np.ascontiguousarray(empty[:, slot])
        columns.append(offer_ids.take(pa.array(np.ascontiguousarray(offers[:, slot]), pa.int32(), mask=hole)))
        columns.append(pa.array(np.ascontiguousarray(decision.scores[:, slot]), pa.float32(), mask=hole))
        if decision.propensities is not None:
            chosen = np.ascontiguousarray(decision.propensities[:, slot])
            columns.append(pa.array(chosen, pa.float32(), mask=hole))
    columns.extend(_experiment_columns(engine, decision.groups, table.num_rows))
    if features_hash:
        columns.append(_hashes(matrix))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


__all__ = ["Consents", "as_table", "consent_matrix", "decide_arrow", "feature_matrix", "output_schema"]
