"""Reads the engine's Parquet decision log (`decision_engine.decision_log.format`) as `LoggedBandit`.

Each decision row (one per slot) becomes a logged row: the action is the offer's index in
``offers`` (default: the logged offer ids, sorted), the propensity the logged one, the reward
the outcome within the attribution window (0 without one), the position the slot and the
decision its decision id: a slot's logged propensity is its probability given the slots above,
which the estimators chain (`decision_engine.evaluation.LoggedBandit`). The
optional columns give the context (``features``) and the eligibility mask (``eligible``)
when every row has them. A decision logged under several experiments is counted once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decision_engine.decision_log.format import DECISIONS_SCHEMA, join_outcomes, read_decisions, read_outcomes
from decision_engine.errors import InvalidInputError
from decision_engine.evaluation.data import LoggedBandit

_ROW = "__row"


def placements(decisions: str | os.PathLike[str]) -> list[str]:
    """The placements a decisions file has rows for, sorted."""
    table = read_decisions(decisions)
    return sorted(str(p) for p in pc.unique(table["placement"]).to_pylist())


def _one_per_slot(table: pa.Table, experiment: str | None) -> pa.Table:
    if experiment is not None:
        return table.filter(pc.equal(table["experiment"], pa.scalar(experiment)))
    keys = table.select(["decision_id", "slot"]).append_column(_ROW, table[_ROW])
    first = keys.group_by(["decision_id", "slot"], use_threads=False).aggregate([(_ROW, "min")])
    keep = pc.is_in(table[_ROW], value_set=first[f"{_ROW}_min"])
    return table.filter(keep)


def _matrix(column: pa.ChunkedArray[Any], name: str) -> np.ndarray[Any, Any] | None:
    if column.null_count:
        return None
    rows = [r or [] for r in column.to_pylist()]
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InvalidInputError(f"column '{name}' has lists of different lengths {sorted(widths)}")
    return np.asarray(rows, dtype=np.float64)


def load_decision_log(
    decisions: str | os.PathLike[str],
    outcomes: str | os.PathLike[str],
    *,
    placement: str | None = None,
    offers: Sequence[str] | None = None,
    window: timedelta = timedelta(days=7),
    experiment: str | None = None,
) -> LoggedBandit:
    """One placement's decisions with their rewards; ``placement`` may be left out when the log
    has only one. ``offers`` fixes the action order (e.g. the catalog's offers of the placement)."""
    table = read_decisions(decisions, optional=True)
    table = table.append_column(_ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    logged = sorted(str(p) for p in pc.unique(table["placement"]).to_pylist())
    if placement is None:
        if len(logged) != 1:
            raise InvalidInputError(f"{decisions}: the log has placements {logged}; choose one")
        placement = logged[0]
    table = table.filter(pc.equal(table["placement"], pa.scalar(placement)))
    table = _one_per_slot(table, experiment)
    if table.num_rows == 0:
        raise InvalidInputError(f"{decisions}: no decisions for placement {placement!r} (logged: {logged})")
    joined = join_outcomes(table.select([*DECISIONS_SCHEMA.names, _ROW]), read_outcomes(outcomes), window)
    extra = table.take(pc.index_in(joined[_ROW], value_set=table[_ROW]))
    offer_ids = [str(o) for o in joined["offer_id"].to_pylist()]
    names = list(offers) if offers is not None else sorted(set(offer_ids))
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(offer_ids) - set(index))
    if unknown:
        raise InvalidInputError(
            f"{decisions}: offers {unknown[:5]} of placement {placement!r} are not in {names}"
        )
    X = _matrix(extra["features"], "features") if "features" in extra.column_names else None
    mask = None
    if "eligible" in extra.column_names and not extra["eligible"].null_count:
        mask = np.zeros((joined.num_rows, len(names)), dtype=bool)
        for row, eligible in enumerate(extra["eligible"].to_pylist()):
            mask[row, [index[e] for e in eligible or () if e in index]] = True
    seconds = joined["time"].cast(pa.int64()).to_numpy() / 1e6
    return LoggedBandit(
        reward=joined["reward"].to_numpy(),
        action=np.array([index[o] for o in offer_ids], dtype=np.int64),
        propensity=joined["propensity"].to_numpy(),
        n_actions=len(names),
        X=X,
        mask=mask,
        position=joined["slot"].to_numpy().astype(np.int64),
        time=seconds,
        action_ids=tuple(names),
        decision=joined["decision_id"].to_numpy(),
    )
