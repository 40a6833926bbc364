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
from decision_engine.batch.budgets import Ledger, batch_key, offer_counts
from decision_engine.catalog import LoadedCatalog
from decision_engine.engine import Engine, Timestamp
from decision_engine.errors import InvalidInputError

# Decision ids of an engine count from 1 and stay below 2**40; `unique_ids` puts a random
# 24-bit tag above them, so the ids of many deciders do not collide.
_TAG_SHIFT = 40


class BatchDecider:
    """Decides ``placement`` for each Arrow batch it is called with (`decide_arrow`).

    The engine is opened with ``seed`` on the wall clock, or on a simulated clock when ``now``
    is given (every batch is decided at ``now``), and learns ``policy_state`` (a file of
    `Engine.save_policy_state`) once.

    **Same seed, same decisions.** With profile ids (``id_column``) each profile draws from
    its own random stream, ``(seed, stream, profile id)``, so deciders that split one input
    between them in any way make the decisions one decider makes. ``stream`` defaults to
    0; give each run of a campaign its own. Without ids a decision draws from the stream of
    ``(seed, decision id)``, and an engine numbers its decisions 1, 2, ... in the order it
    makes them. ``unique_ids=True`` tags each decider's decision ids with a random 24-bit
    prefix so that ids from many deciders stay distinct (the chance that two of ``k``
    deciders share a tag is about ``k**2 / 2**25``); the tagged ids are labels for the log,
    not ids this engine takes outcomes for.

    **Budgets** (`decision_engine.batch.budgets`). ``prices`` (from the run's first pass)
    makes every row take its offers by expected value minus price. ``ledger`` shares the
    budgets' room between deciders: each batch takes its share from it, so the budgets hold
    over the whole run.

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
        stream: int = 0,
        prices: dict[str, float] | None = None,
        ledger: Ledger | None = None,
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
            stream=stream,
            prices=prices,
            ledger=ledger,
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
        self.stream, self.prices, self.ledger = stream, prices, ledger
        self.slots = self.engine.placements[placement][1]
        if ledger is not None and (not prices or id_column is None):
            raise InvalidInputError("a budget ledger needs the run's budget prices and profile ids")
        self.rows = 0

    def decide(self, batch: Any, *, row_offset: int = 0) -> pa.RecordBatch:
        """The decisions for one batch as a record batch; error messages count its rows
        from ``row_offset`` (its first row's number in a larger input)."""
        table = as_table(batch)
        decided = (
            self._decide(table, row_offset) if self.ledger is None else self._decide_shared(table, row_offset)
        )
        self.rows += decided.num_rows
        if self._tag:
            ids = decided.column("decision_id").to_numpy() | np.uint64(self._tag << _TAG_SHIFT)
            position = decided.schema.get_field_index("decision_id")
            decided = decided.set_column(position, self.schema.field(position), pa.array(ids, pa.uint64()))
        return decided

    def _decide(
        self, table: pa.Table, row_offset: int, quota: dict[str, int] | None = None
    ) -> pa.RecordBatch:
        return decide_arrow(
            self.engine,
            self.placement,
            table,
            id_column=self.id_column,
            consents=self.consents,
            now=self.now,
            propensities=self.propensities,
            threads=self.threads,
            features_hash=self.features_hash,
            row_offset=row_offset,
            stream=self.stream,
            prices=self.prices,
            quota=quota,
        )

    def _decide_shared(self, table: pa.Table, row_offset: int) -> pa.RecordBatch:
        """A batch under budgets shared through the ledger, in rounds: decide the rows left
        within what the ledger has, take what they used; rows holding an offer beyond what
        the ledger granted are released and decided again without it."""
        assert self.ledger is not None and self.prices is not None and self.id_column is not None
        key, budgeted = batch_key(table, self.id_column), list(self.prices)
        rows = np.arange(table.num_rows)  # positions still to decide
        parts: list[tuple[np.ndarray, pa.RecordBatch]] = []
        closed: set[str] = set()  # offers the ledger ran out of for this batch
        rounds = 0
        while len(rows):
            round_key = f"{key}#{rounds}"
            rounds += 1
            available = self.ledger.available(round_key)
            last = rounds > len(budgeted)  # every budget refused once: decide without them
            quota = {o: 0 if (o in closed or last) else available[o] for o in budgeted}
            part = table if len(rows) == table.num_rows else table.take(rows)
            decided = self._decide(part, row_offset, quota)
            granted = self.ledger.take(round_key, offer_counts(decided, budgeted, self.slots))
            over = self._over_grant(decided, granted)
            if not over.any():
                parts.append((rows, decided))
                break
            keep = ~over
            for decision_id in decided.column("decision_id").to_numpy()[over]:
                self.engine.release(int(decision_id))
            kept = decided.filter(pa.array(keep))
            self.ledger.take(round_key, offer_counts(kept, budgeted, self.slots))
            parts.append((rows[keep], kept))
            closed |= {o for o, n in offer_counts(decided, budgeted, self.slots).items() if n > granted[o]}
            rows = rows[over]
        self.ledger.finish(key, rounds)
        if len(parts) == 1:
            return parts[0][1]
        order = np.argsort(np.concatenate([positions for positions, _ in parts]), kind="stable")
        merged = pa.Table.from_batches([part for _, part in parts]).take(order)
        return merged.combine_chunks().to_batches()[0]

    def _over_grant(self, decided: pa.RecordBatch, granted: dict[str, int]) -> np.ndarray:
        """Rows holding an offer past what the ledger granted (the last rows holding it)."""
        over = np.zeros(decided.num_rows, dtype=bool)
        for offer, allowed in granted.items():
            holds = np.zeros(decided.num_rows, dtype=bool)
            for slot in range(self.slots):
                holds |= decided.column(f"offer_{slot}").to_numpy(zero_copy_only=False) == offer
            over[np.flatnonzero(holds)[allowed:]] = True
        return over

    def __call__(self, batch: Any) -> pa.RecordBatch | pa.Table:
        decided = self.decide(batch)
        return pa.Table.from_batches([decided]) if isinstance(batch, pa.Table) else decided

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._arguments,))


def _rebuild(arguments: dict[str, Any]) -> BatchDecider:
    return BatchDecider(**arguments)


__all__ = ["BatchDecider"]
