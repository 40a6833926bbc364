"""The Open Bandit Dataset (Saito et al., NeurIPS 2021) CSV format as `LoggedBandit`.

Columns: ``timestamp, item_id, position, click, propensity_score, user_feature_0..3,
user-item_affinity_0..79``. The action is ``item_id``, the reward ``click``, the position is
made 0-based. The hashed categorical user features are one-hot encoded by hashing
``"user_feature_<j>=<value>"`` (xxh3) into ``buckets`` columns per feature, so two files give
the same columns, named ``user_feature_<j>[<bucket>]`` (a policy's ``features`` selects them by
``user_feature_<j>``); ``affinity=True`` appends the 80 user-item affinities.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import xxhash

from decision_engine.errors import InvalidInputError
from decision_engine.evaluation.data import FloatArray, LoggedBandit

USER_FEATURES = tuple(f"user_feature_{j}" for j in range(4))
_REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score", *USER_FEATURES)


def _hashed_one_hot(table: pa.Table, buckets: int) -> FloatArray:
    X = np.zeros((table.num_rows, len(USER_FEATURES) * buckets))
    rows = np.arange(table.num_rows)
    for j, name in enumerate(USER_FEATURES):
        values = table.column(name).cast(pa.string()).to_pylist()
        codes = {v: xxhash.xxh3_64_intdigest(f"{name}={v}".encode()) % buckets for v in set(values)}
        X[rows, j * buckets + np.array([codes[v] for v in values], dtype=np.int64)] = 1.0
    return X


def _n_items(path: Path, table: pa.Table) -> int:
    context = path.with_name("item_context.csv")
    logged = int(pc.max(table.column("item_id")).as_py()) + 1
    if context.exists():
        return max(logged, pcsv.read_csv(context).num_rows)
    return logged


def load_obd(path: str | os.PathLike[str], *, buckets: int = 8, affinity: bool = False) -> LoggedBandit:
    """One OBD ``all.csv`` (e.g. ``random/all/all.csv``) in time order.

    ``n_actions`` is the number of rows of the ``item_context.csv`` beside it (else the largest
    logged item id + 1).
    """
    path = Path(path)
    try:
        table = pcsv.read_csv(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInputError(f"{path}: not a readable Open Bandit Dataset CSV: {exc}") from exc
    missing = [name for name in _REQUIRED if name not in table.column_names]
    if missing:
        raise InvalidInputError(f"{path}: missing OBD columns {missing} (expected {list(_REQUIRED)})")
    if buckets < 1:
        raise InvalidInputError(f"buckets must be at least 1, got {buckets}")
    table = table.sort_by("timestamp")
    parts = [_hashed_one_hot(table, buckets)]
    columns = [f"{name}[{k}]" for name in USER_FEATURES for k in range(buckets)]
    if affinity:
        names = [n for n in table.column_names if n.startswith("user-item_affinity_")]
        names.sort(key=lambda n: int(n.rsplit("_", 1)[1]))
        columns += names
        parts.append(np.column_stack([table.column(n).to_numpy() for n in names]).astype(np.float64))
    seconds = table.column("timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy() / 1e6
    return LoggedBandit(
        reward=table.column("click").to_numpy().astype(np.float64),
        action=table.column("item_id").to_numpy().astype(np.int64),
        propensity=table.column("propensity_score").to_numpy().astype(np.float64),
        n_actions=_n_items(path, table),
        X=np.hstack(parts),
        position=table.column("position").to_numpy().astype(np.int64) - 1,
        time=seconds,
        feature_names=tuple(columns),
    )


def uniform_policy(data: LoggedBandit) -> FloatArray:
    """The uniform random policy's probabilities, 1/n_actions for every item at every position."""
    return np.full((data.n, data.n_actions), 1.0 / data.n_actions)


def positional_policy(per_position: FloatArray, data: LoggedBandit) -> FloatArray:
    """Row i gets the distribution of its position: ``per_position[data.position[i]]``."""
    if data.position is None:
        raise InvalidInputError("the log has no positions; a per-position policy needs them")
    if per_position.shape[1] != data.n_actions or int(data.position.max()) >= per_position.shape[0]:
        raise InvalidInputError(
            f"per-position probabilities must have shape (positions, {data.n_actions}) covering "
            f"position {int(data.position.max())}, got {per_position.shape}"
        )
    probabilities: FloatArray = per_position[data.position]
    return probabilities


def context_free_distribution(data: LoggedBandit, method: str = "mean_propensity") -> FloatArray:
    """A context-free logging policy's (e.g. Bernoulli Thompson sampling's) action distribution
    per position, shape (positions, n_actions), estimated from its own log.

    ``mean_propensity``: the mean logged propensity of each (item, position), renormalised over
    the items of a position (items never logged at a position get 0). It is size-biased: rows
    logged when an item's probability was high count more often. ``frequency``: the share of each
    item among a position's logged rows, an unbiased estimate of the policy's time-averaged
    distribution (noisier with few rows per item).
    """
    if data.position is None:
        raise InvalidInputError("the log has no positions")
    slots = int(data.position.max()) + 1
    cell = data.position * data.n_actions + data.action
    counts = np.bincount(cell, minlength=slots * data.n_actions).reshape(slots, data.n_actions)
    if method == "frequency":
        totals = counts.astype(np.float64)
    elif method == "mean_propensity":
        sums = np.bincount(cell, weights=data.propensity, minlength=slots * data.n_actions)
        totals = np.divide(sums.reshape(slots, data.n_actions), np.maximum(counts, 1))
    else:
        raise InvalidInputError(f"method must be 'mean_propensity' or 'frequency', got {method!r}")
    distribution: FloatArray = totals / totals.sum(axis=1, keepdims=True)
    return distribution
