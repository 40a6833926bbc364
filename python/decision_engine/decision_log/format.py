"""The decision log's format: two Parquet files, their writers and readers, and the join of
outcomes to decisions that the experiment report and off-policy evaluation read.

Decisions, one row per chosen offer (a decision with two slots has two rows)::

    decision_id uint64 | time timestamp[us, UTC] | profile_id string | placement string |
    experiment string | group string | offer_id string | slot int32 | propensity float64

Outcomes, reported later against a decision (and the offer that converted)::

    decision_id uint64 | offer_id string | time timestamp[us, UTC] | reward float64 | value float64

Optional decision columns for off-policy evaluation (``DecisionLogWriter(..., ope=True)``),
null where unknown; files without them still read::

    policy_version string | features_hash string | eligible list<string> |
    features list<float32>  (only with ``features=True``: the profile's feature vector)

``features_hash`` is `features_hash` of the float32 feature vector (xxh3-64, hex), so rows
can be joined with features kept elsewhere; ``eligible`` lists the offers the policy could
choose from. `read_decisions(path, optional=True)` returns whichever of them the file has.

An outcome with a null or empty ``offer_id`` counts for the decision's slot-0 offer. The
experiments behind the log (groups and shares) travel in the decisions file's schema
metadata under ``decision_engine.experiments``, so the report can check sample ratios.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from decision_engine.errors import InvalidInputError
from decision_engine.experiments.assignment import Experiment

TIME = pa.timestamp("us", tz="UTC")
_DECISION_FIELDS: list[pa.Field[Any]] = [
    pa.field("decision_id", pa.uint64(), nullable=False),
    pa.field("time", TIME, nullable=False),
    pa.field("profile_id", pa.string(), nullable=False),
    pa.field("placement", pa.string(), nullable=False),
    pa.field("experiment", pa.string(), nullable=False),
    pa.field("group", pa.string(), nullable=False),
    pa.field("offer_id", pa.string(), nullable=False),
    pa.field("slot", pa.int32(), nullable=False),
    pa.field("propensity", pa.float64(), nullable=False),
]
DECISIONS_SCHEMA = pa.schema(_DECISION_FIELDS)
OPE_FIELDS: list[pa.Field[Any]] = [
    pa.field("policy_version", pa.string()),
    pa.field("features_hash", pa.string()),
    pa.field("eligible", pa.list_(pa.string())),
]
FEATURES_FIELD: pa.Field[Any] = pa.field("features", pa.list_(pa.float32()))
OPTIONAL_DECISION_FIELDS = [*OPE_FIELDS, FEATURES_FIELD]
_OUTCOME_FIELDS: list[pa.Field[Any]] = [
    pa.field("decision_id", pa.uint64(), nullable=False),
    pa.field("offer_id", pa.string()),  # null or "": the decision's slot-0 offer
    pa.field("time", TIME, nullable=False),
    pa.field("reward", pa.float64(), nullable=False),
    pa.field("value", pa.float64(), nullable=False),
]
OUTCOMES_SCHEMA = pa.schema(_OUTCOME_FIELDS)
EXPERIMENTS_KEY = b"decision_engine.experiments"
Rows = Sequence[Mapping[str, Any]] | Mapping[str, Any]


def _column(values: Any, field: pa.Field[Any]) -> pa.Array[Any]:
    if field.type == TIME:
        array = np.asarray(values)
        if array.dtype.kind in "fi":  # unix seconds, as the engine takes them
            return pa.array((array * 1e6).round().astype(np.int64), pa.int64()).cast(TIME)
        if array.dtype.kind == "M":
            return pa.array(array.astype("datetime64[us]"), TIME)
    column: pa.Array[Any] = pa.array(values, field.type)
    return column


def to_table(rows: Rows, schema: pa.Schema) -> pa.Table:
    """Rows (a list of dicts) or columns (a dict of lists or numpy arrays) as a table of ``schema``.

    Raises InvalidInputError for missing or unexpected columns, values of the wrong type and
    missing values in a column that needs one. Nullable columns may be left out (all null).
    """
    if isinstance(rows, Mapping):
        names = set(rows)
        required = {f.name for f in schema if not f.nullable}
        if not required <= names <= set(schema.names):
            raise InvalidInputError(
                f"columns must be {schema.names}; missing {sorted(required - names)}, "
                f"unexpected {sorted(names - set(schema.names))}"
            )
    try:
        if isinstance(rows, Mapping):
            size = len(next(iter(rows.values()))) if rows else 0
            columns = [_column(rows[f.name], f) if f.name in rows else pa.nulls(size, f.type) for f in schema]
            table = pa.Table.from_arrays(columns, schema=schema)
        else:
            table = pa.Table.from_pylist(list(rows), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInputError(f"rows do not match the log schema: {exc}") from exc
    return _check_required(table, schema, "rows")


def _check_required(table: pa.Table, schema: pa.Schema, source: str) -> pa.Table:
    for field in schema:
        missing = table.column(field.name).null_count
        if not field.nullable and missing:
            raise InvalidInputError(f"{source}: column '{field.name}' has {missing} missing values")
    return table


class LogWriter:
    """Appends batches to a Parquet file; the file appears under ``path`` only once closed.

    Until ``close`` the data goes to ``path + ".partial"``, so a reader never sees half a log.
    Leaving a ``with`` block on an exception closes the partial file and leaves it there.
    """

    def __init__(self, path: str | os.PathLike[str], schema: pa.Schema) -> None:
        self.path = Path(path)
        self.schema = schema
        self.rows_written = 0
        self._partial = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self._partial, schema)

    def append(self, rows: Rows) -> None:
        if self._writer is None:
            raise InvalidInputError(f"{self.path}: the log is closed")
        table = to_table(rows, self.schema)
        self._writer.write_table(table)
        self.rows_written += table.num_rows

    def close(self, *, publish: bool = True) -> None:
        """Finishes the file and moves it to ``path`` (with ``publish=False`` it stays partial)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            if publish:
                os.replace(self._partial, self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close(publish=error is None)


class DecisionLogWriter(LogWriter):
    """Writes the decisions file; ``experiments`` are recorded in its metadata.

    ``ope=True`` adds the optional columns off-policy evaluation needs (``policy_version``,
    ``features_hash``, ``eligible``), ``features=True`` also the feature vectors; rows may leave
    any of them out.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        experiments: Iterable[Experiment] = (),
        *,
        ope: bool = False,
        features: bool = False,
    ) -> None:
        described = json.dumps([e.to_dict() for e in experiments]).encode("utf-8")
        fields = _DECISION_FIELDS + (OPE_FIELDS if ope else []) + ([FEATURES_FIELD] if features else [])
        super().__init__(path, pa.schema(fields).with_metadata({EXPERIMENTS_KEY: described}))


def features_hash(features: Any) -> str:
    """xxh3-64 (hex) of the feature vector's float32 bytes, as logged in ``features_hash``."""
    vector = np.ascontiguousarray(np.asarray(features, dtype=np.float32).ravel())
    return xxhash.xxh3_64_hexdigest(vector.tobytes())


class OutcomeLogWriter(LogWriter):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, OUTCOMES_SCHEMA)


def _read(
    path: str | os.PathLike[str], schema: pa.Schema, optional: Sequence[pa.Field[Any]] = ()
) -> pa.Table:
    table = pq.read_table(Path(path))
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise InvalidInputError(f"{path}: missing columns {missing} (expected {schema.names})")
    present = [f for f in optional if f.name in table.column_names]
    schema = pa.schema([*schema, *present])
    try:
        # Check for nulls before the cast, which would take the schema's word for it.
        table = _check_required(table.select(schema.names), schema, str(path))
        return table.cast(schema.remove_metadata())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInputError(f"{path}: columns do not match the log schema: {exc}") from exc


def read_decisions(path: str | os.PathLike[str], *, optional: bool = False) -> pa.Table:
    """The decisions file's columns; with ``optional=True`` also the optional OPE columns it has."""
    return _read(path, DECISIONS_SCHEMA, OPTIONAL_DECISION_FIELDS if optional else ())


def read_outcomes(path: str | os.PathLike[str]) -> pa.Table:
    return _read(path, OUTCOMES_SCHEMA)


def read_experiments(path: str | os.PathLike[str]) -> list[Experiment]:
    """The experiments recorded in a decisions file's metadata (none for foreign files)."""
    metadata = pq.read_schema(Path(path)).metadata or {}
    described = metadata.get(EXPERIMENTS_KEY)
    return [] if described is None else [Experiment.from_dict(d) for d in json.loads(described)]


def join_outcomes(decisions: pa.Table, outcomes: pa.Table, attribution_window: timedelta) -> pa.Table:
    """Decision rows with the outcomes reported within ``attribution_window`` after them.

    Adds ``outcomes`` (count), ``reward`` (the largest, 0 without one), ``value`` (their sum)
    and ``converted`` (reward > 0). Rows come back ordered by time, decision id and slot.
    """
    first = decisions.filter(pc.equal(decisions["slot"], pa.scalar(0, pa.int32()))).select(
        ["decision_id", "offer_id"]
    )
    first = first.rename_columns(["decision_id", "first_offer"])
    reported = outcomes.rename_columns(["decision_id", "reported_offer", "outcome_time", "reward", "value"])
    reported = reported.join(first, "decision_id", join_type="left outer")
    no_offer = pc.or_kleene(
        pc.is_null(reported["reported_offer"]), pc.equal(reported["reported_offer"], pa.scalar(""))
    )
    offer = pc.if_else(no_offer, reported["first_offer"], reported["reported_offer"])
    reported = reported.append_column("offer_id", offer).drop_columns(["reported_offer", "first_offer"])

    shown = decisions.select(["decision_id", "offer_id", "time"])
    matched = reported.join(shown, ["decision_id", "offer_id"], join_type="inner")
    delay = pc.subtract(matched["outcome_time"], matched["time"])
    window = pa.scalar(attribution_window, pa.duration("us"))
    in_window = pc.and_(
        pc.greater_equal(delay, pa.scalar(timedelta(0), pa.duration("us"))), pc.less_equal(delay, window)
    )
    matched = matched.filter(in_window)
    per_offer = matched.group_by(["decision_id", "offer_id"]).aggregate(
        [("reward", "count"), ("reward", "max"), ("value", "sum")]
    )
    per_offer = per_offer.rename_columns(["decision_id", "offer_id", "outcomes", "reward", "value"])
    joined = decisions.join(per_offer, ["decision_id", "offer_id"], join_type="left outer")
    for name, zero in (
        ("outcomes", pa.scalar(0, pa.int64())),
        ("reward", pa.scalar(0.0)),
        ("value", pa.scalar(0.0)),
    ):
        filled = cast("pa.ChunkedArray[Any]", pc.fill_null(joined[name], zero))
        joined = joined.set_column(joined.schema.get_field_index(name), name, filled)
    joined = joined.append_column("converted", pc.greater(joined["reward"], pa.scalar(0.0)))
    return joined.sort_by([("time", "ascending"), ("decision_id", "ascending"), ("slot", "ascending")])


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """``"7d"``, ``"12h"``, ``"1d12h"``, ``"30m"``, ``"2w"`` as a timedelta."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise InvalidInputError(f"not a duration: {text!r} (use e.g. 7d, 12h, 30m, 1d12h)")
    return sum((timedelta(**{_UNITS[unit]: float(amount)}) for amount, unit in parts), timedelta())
