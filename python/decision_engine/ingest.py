"""Profiles into the engine's store: rows of dicts, Arrow tables, or an id list with a numpy
array. Arrow and numpy go columnar (`_core.Engine.upsert_columns`): numeric and bool columns
as float64 with a validity mask (an Arrow null, or a NaN of a numpy array, leaves the value
unchanged; a NaN in an Arrow column is a bad value), text columns dictionary-encoded with code
-1 for a null. The core checks every value (names, types, categories, ids) and reports per
row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from decision_engine.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from decision_engine._core import WriteReport
    from decision_engine.engine import Engine

__all__ = ["ID_COLUMN", "LIST_COLUMNS", "upsert"]

ID_COLUMN = "id"
# per-profile lists a row of dicts may carry; an Arrow table with one of them goes row by row
LIST_COLUMNS = ("consents", "revoked_consents", "purchases")

# feature -> (values, which are present: None for all)
Numeric = dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]]
Categorical = dict[str, tuple[list[str], npt.NDArray[np.int32]]]


def upsert(
    engine: Engine,
    data: object,
    ids: Sequence[str] | None,
    features: npt.ArrayLike | None,
    now: float | None = None,
) -> WriteReport:
    if ids is not None or features is not None:
        if data is not None:
            raise InvalidInputError("give the profiles as data, or as ids= and features=, not both")
        if ids is None or features is None:
            raise InvalidInputError("ids= and features= go together: one id per row of features")
        return _upsert_array(engine, list(ids), features, now)
    if isinstance(data, list | tuple):
        return engine._core.upsert_profiles([dict(row) for row in _mappings(data)], now)
    if data is None:
        raise InvalidInputError("no profiles given: a list of dicts, an Arrow table, or ids= and features=")
    return _upsert_arrow(engine, data, now)


def _mappings(rows: Sequence[object]) -> Sequence[Mapping[str, object]]:
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInputError(f"profile #{index} is a {type(row).__name__}, expected a dict")
    return rows  # type: ignore[return-value]


def _upsert_array(engine: Engine, ids: list[str], features: npt.ArrayLike, now: float | None) -> WriteReport:
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise InvalidInputError(
            f"features must be 2-D with one row per id ({len(ids)} ids), got shape {matrix.shape}"
        )
    stored = engine.stored_features
    if matrix.shape[1] == len(stored):
        names = stored
    elif matrix.shape[1] == len(engine.feature_names):
        names = engine.feature_names
    else:
        raise InvalidInputError(
            f"features has {matrix.shape[1]} columns: give the {len(stored)} stored features "
            f"({', '.join(stored)}) in schema order, or all {len(engine.feature_names)}"
        )
    categories = {f.name: list(f.values) for f in engine.catalog.model.features if f.values}
    computed = set(engine.feature_names) - set(stored)
    numeric: Numeric = {}
    categorical: Categorical = {}
    for column, name in enumerate(names):
        values = np.ascontiguousarray(matrix[:, column])
        if name in computed and np.isnan(values).all():
            continue  # nothing given (the core refuses any value of a computed feature)
        if name in categories:
            categorical[name] = (categories[name], _codes(name, values, len(categories[name])))
        else:
            present = ~np.isnan(values)
            numeric[name] = (values, None if present.all() else present)
    return engine._core.upsert_columns(ids, numeric, categorical, now)


def _codes(name: str, values: npt.NDArray[np.float64], count: int) -> npt.NDArray[np.int32]:
    """A category column's float codes (NaN: unchanged) as int32 codes (-1: unchanged)."""
    known = ~np.isnan(values)
    bad = known & ((values != np.round(values)) | (values < 0) | (values >= count))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"feature '{name}' holds category codes 0..{count - 1} (or NaN), got {values[row]} in row {row}"
        )
    return np.where(known, values, -1).astype(np.int32)


def _upsert_arrow(engine: Engine, data: object, now: float | None) -> WriteReport:
    from decision_engine.batch.arrow import as_table

    table = as_table(data)
    if ID_COLUMN not in table.column_names:
        raise InvalidInputError(
            f"the profiles need an '{ID_COLUMN}' column (found: {', '.join(table.column_names) or 'none'})"
        )
    if any(name in table.column_names for name in LIST_COLUMNS):
        return engine._core.upsert_profiles(_rows(table), now)
    ids = [("" if v is None else str(v)) for v in table.column(ID_COLUMN).to_pylist()]
    numeric: Numeric = {}
    categorical: Categorical = {}
    for name in table.column_names:
        if name != ID_COLUMN:
            _arrow_column(name, table.column(name), numeric, categorical)
    return engine._core.upsert_columns(ids, numeric, categorical, now)


def _arrow_column(
    name: str, column: pa.ChunkedArray[Any], numeric: Numeric, categorical: Categorical
) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        encoded: Any = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
        categorical[name] = (encoded.dictionary.to_pylist(), codes)
    elif pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind):
        as_float = column.cast(pa.float64())
        present = None
        if as_float.null_count:  # a null leaves the value unchanged (a NaN is a bad value)
            present = np.ascontiguousarray(as_float.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
            as_float = as_float.fill_null(pa.scalar(0.0))
        numeric[name] = (np.ascontiguousarray(as_float.to_numpy(), dtype=np.float64), present)
    else:
        raise InvalidInputError(
            f"column '{name}' is {kind}: profile columns are numbers, booleans or text (category value names)"
        )


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """The table's rows as dicts, nulls left out (a null leaves the value unchanged)."""
    rows = table.to_pylist()
    for row in rows:
        row[ID_COLUMN] = row[ID_COLUMN] or ""
    return [{k: v for k, v in row.items() if v is not None} for row in rows]
