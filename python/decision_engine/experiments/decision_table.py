"""The decision log reduced to one entry per decision, and its cumulative counts over time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
HOUR = 3_600_000_000  # microseconds
# Candidate time bins, finest first; the report uses the finest that gives at most MAX_BINS.
BINS = [
    (HOUR, "1h"),
    (3 * HOUR, "3h"),
    (6 * HOUR, "6h"),
    (12 * HOUR, "12h"),
    (24 * HOUR, "1d"),
    (168 * HOUR, "7d"),
]
MAX_BINS = 120


@dataclass(frozen=True)
class DecisionTable:
    """One entry per decision: group code, time (unix microseconds), profile code, outcome."""

    group_names: list[str]
    group: I64
    time: I64
    profile: I64
    converted: npt.NDArray[np.bool_]
    value: F64


def _codes(column: pa.ChunkedArray[Any]) -> tuple[I64, list[str]]:
    encoded = cast("pa.DictionaryArray[Any, Any]", pc.dictionary_encode(column).combine_chunks())
    return encoded.indices.to_numpy().astype(np.int64), [str(v) for v in encoded.dictionary.to_pylist()]


def per_decision(joined: pa.Table) -> DecisionTable:
    """Collapses the slots of each decision (``join_outcomes`` output): converted if any slot did."""
    ids = joined["decision_id"].to_numpy()
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    first = order[starts]
    group, names = _codes(joined["group"])
    profile, _ = _codes(joined["profile_id"])
    converted = np.maximum.reduceat(joined["converted"].to_numpy(zero_copy_only=False)[order], starts)
    value = np.add.reduceat(joined["value"].to_numpy()[order], starts)
    time = joined["time"].cast(pa.int64()).to_numpy()[first]
    return DecisionTable(names, group[first], time, profile[first], converted.astype(bool), value)


@dataclass(frozen=True)
class Cumulative:
    """Per group, decisions and conversions made up to the end of each time bin; ``index`` is
    the bin of every decision of the table."""

    ends: list[str]
    bin_label: str
    decisions: dict[str, I64]
    conversions: dict[str, I64]
    index: I64


def iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).isoformat(timespec="seconds")


def cumulative_counts(table: DecisionTable, order: Sequence[str]) -> Cumulative:
    start, end = int(table.time.min()), int(table.time.max())
    width, label = next(((w, lbl) for w, lbl in BINS if (end - start) // w + 1 <= MAX_BINS), BINS[-1])
    origin = start - start % width
    index = (table.time - origin) // width
    bins = int(index.max()) + 1
    decisions, conversions = {}, {}
    for name in order:
        mask = table.group == table.group_names.index(name)
        decisions[name] = np.cumsum(np.bincount(index[mask], minlength=bins))
        conversions[name] = np.cumsum(np.bincount(index[mask], weights=table.converted[mask], minlength=bins))
        conversions[name] = conversions[name].round().astype(np.int64)
    ends = [iso(min(origin + (k + 1) * width, end)) for k in range(bins)]
    return Cumulative(ends, label, decisions, conversions, index)
