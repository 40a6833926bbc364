"""`BatchDecider`: one engine behind an Arrow-in, Arrow-out callable, for distributed engines.

Ray Data builds one per actor::

    ds.map_batches(BatchDecider, fn_constructor_args=("catalog.yaml", "email_weekly"),
                   fn_constructor_kwargs={"seed": 7, "policy_state": "state.json"},
                   batch_format="pyarrow", concurrency=4)

Spark's ``mapInArrow`` and Daft call it on record batches (recipes in the README). It pickles
as its arguments, so a closure that holds one ships a few bytes and each worker loads the
catalog and the policy state once, when it is unpickled.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from decision_engine.batch.arrow import Consents, as_table, decide_arrow, output_schema
from decision_engine.catalog import LoadedCatalog
from decision_engine.engine import Engine, Timestamp

# Decision ids of an engine count from 1 and stay below 2**40; `unique_ids` puts a random
# 24-bit tag above them, so the ids of many deciders do not collide.
_TAG_SHIFT = 40


class BatchDecider:
    """Decides ``placement`` for each Arrow batch it is called with (`decide_arrow`).

    The engine is opened with ``seed`` on the wall clock, or on a simulated clock when ``now``
    is given (every batch is decided at ``now``), and learns ``policy_state`` (a file of
    `Engine.save_policy_state`) once. Two deciders with the same arguments make the same
    decisions for the same sequence of batches: each decision draws from the random stream
    of ``(seed, decision id)``, and an engine numbers its decisions 1, 2, ... in the order it
    makes them. Deciders that split one input between them therefore number, and draw, by
    their own share of it. ``unique_ids=True`` tags each decider's ids with a random 24-bit
    prefix so that ids from many deciders stay distinct (the chance that two of ``k``
    deciders share a tag is about ``k**2 / 2**25``); the tagged ids are labels for the log,
    not ids this engine takes outcomes for.

    Called with a pyarrow Table it returns a Table (Ray's ``batch_format="pyarrow"``), with
    anything else a RecordBatch.
    """

    def __init__(
        self,
        catalog: str | os.PathLike[str] | LoadedCatalog,
        placement: str,
        *,
        seed: int = 0,
        policy_state: str | os.PathLike[str] | None = None,
        id_column: str | None = "profile_id",
        consents: Consents = None,
        now: Timestamp = None,
        propensities: bool = True,
        features_hash: bool = False,
        threads: int | None = None,
        max_pending: int | None = None,
        unique_ids: bool = False,
    ) -> None:
        self._arguments: dict[str, Any] = dict(
            catalog=catalog,
            placement=placement,
            seed=seed,
            policy_state=policy_state,
            id_column=id_column,
            consents=consents,
            now=now,
            propensities=propensities,
            features_hash=features_hash,
            threads=threads,
            max_pending=max_pending,
            unique_ids=unique_ids,
        )
        clock: Literal["wall", "simulated"] = "simulated" if now is not None else "wall"
        self.engine = Engine(catalog, seed=seed, clock=clock, max_pending=max_pending)
        self.placement = placement
        # (arms loaded, arms skipped) of the policy state; None without one
        self.policy_state_loaded = (
            None if policy_state is None else self.engine.load_policy_state(policy_state)
        )
        self.schema = output_schema(
            self.engine, placement, propensities=propensities, features_hash=features_hash
        )
        self._tag = (struct.unpack("<I", os.urandom(4))[0] & 0xFF_FFFF) | 1 if unique_ids else 0
        self.id_column, self.consents, self.now = id_column, consents, now
        self.propensities, self.features_hash, self.threads = propensities, features_hash, threads
        self.rows = 0

    def decide(self, batch: Any, *, row_offset: int = 0) -> pa.RecordBatch:
        """The decisions for one batch as a record batch; error messages count its rows
        from ``row_offset`` (its first row's number in a larger input)."""
        decided = decide_arrow(
            self.engine,
            self.placement,
            as_table(batch),
            id_column=self.id_column,
            consents=self.consents,
            now=self.now,
            propensities=self.propensities,
            threads=self.threads,
            features_hash=self.features_hash,
            row_offset=row_offset,
        )
        self.rows += decided.num_rows
        if self._tag:
            ids = decided.column("decision_id").to_numpy() | np.uint64(self._tag << _TAG_SHIFT)
            position = decided.schema.get_field_index("decision_id")
            decided = decided.set_column(position, self.schema.field(position), pa.array(ids, pa.uint64()))
        return decided

    def __call__(self, batch: Any) -> pa.RecordBatch | pa.Table:
        decided = self.decide(batch)
        return pa.Table.from_batches([decided]) if isinstance(batch, pa.Table) else decided

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._arguments,))


def _rebuild(arguments: dict[str, Any]) -> BatchDecider:
    return BatchDecider(**arguments)


__all__ = ["BatchDecider"]
