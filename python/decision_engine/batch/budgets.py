"""Volume budgets for a campaign split into batches, on one machine or many.

A budget must hold over the whole run however its rows are split, and the run should
reach the value of allocating all of it at once (`Engine.decide_batch(allocate_budgets=
True)`). Two passes do it:

1. **Prices.** `sample_prices` reads a sample of the run's profiles and asks the core for
   each budget's price (`Engine.budget_prices`): the Lagrangian dual at which the sample,
   scaled to the run, takes what the budget has room for.
2. **Decisions.** Every batch is decided alone with those prices (each profile takes its
   offers by expected value minus price). The count stays exact:

   - in one process, by the engine's own budget counters;
   - across processes (Ray actors, Spark tasks), by one `BudgetLedger` that every batch
     takes its share from. A batch is decided within what the ledger has left, then takes
     what it used; where another batch took the room meanwhile, its last rows holding that
     offer are released and decided again without it. A batch's take is keyed by its rows,
     and a retried batch (a failed actor) replaces its earlier take instead of adding to it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import pyarrow as pa
import xxhash

from decision_engine.engine import BudgetPrice

SAMPLE_ROWS = 100_000
"""Rows `sample_prices` reads by default: prices settle well before (see the tests)."""


@dataclass(frozen=True)
class CampaignBudgets:
    """What the second pass needs: a price per budgeted offer, and each budget's room."""

    prices: dict[str, float]
    room: dict[str, int]
    sampled_rows: int

    @classmethod
    def of(cls, priced: Mapping[str, BudgetPrice], sampled_rows: int) -> CampaignBudgets:
        return cls(
            {offer: p.price for offer, p in priced.items()},
            {offer: p.room for offer, p in priced.items()},
            sampled_rows,
        )


class Ledger(Protocol):
    """What a batch asks of the shared budgets (a `BudgetLedger`, or a Ray actor's handle)."""

    def available(self, key: str) -> dict[str, int]: ...
    def take(self, key: str, used: Mapping[str, int]) -> dict[str, int]: ...
    def finish(self, key: str, rounds: int) -> None: ...


class BudgetLedger:
    """The room of a campaign's budgets, shared by every batch of the run.

    Takes are keyed: ``take(key, used)`` first gives back whatever ``key`` held, then
    grants ``min(used, left)`` per offer, so a batch that is decided again (a retried task)
    never counts twice. Thread-safe; as a Ray actor it serves every worker.
    """

    def __init__(self, room: Mapping[str, int]) -> None:
        self._room = dict(room)
        self._held: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def _left(self) -> dict[str, int]:
        left = dict(self._room)
        for held in self._held.values():
            for offer, n in held.items():
                left[offer] -= n
        return left

    def available(self, key: str) -> dict[str, int]:
        """What a batch under ``key`` may take: what is left, plus what it holds already."""
        with self._lock:
            left, own = self._left(), self._held.get(key, {})
            return {offer: n + own.get(offer, 0) for offer, n in left.items()}

    def take(self, key: str, used: Mapping[str, int]) -> dict[str, int]:
        """Grants ``key`` up to ``used`` of each offer (replacing its earlier take)."""
        with self._lock:
            self._held.pop(key, None)
            left = self._left()
            granted = {offer: max(0, min(int(used.get(offer, 0)), left[offer])) for offer in self._room}
            self._held[key] = granted
            return granted

    def finish(self, key: str, rounds: int) -> None:
        """A batch's rounds ``key#0 .. key#rounds-1`` are its final takes: any later round a
        failed attempt took is given back."""
        with self._lock:
            prefix = f"{key}#"
            for held in [k for k in self._held if k.startswith(prefix) and int(k[len(prefix) :]) >= rounds]:
                del self._held[held]

    def used(self) -> dict[str, int]:
        """Impressions taken so far, per offer."""
        with self._lock:
            left = self._left()
            return {offer: self._room[offer] - left[offer] for offer in self._room}


class RayLedger:
    """A `Ledger` over a Ray actor holding a `BudgetLedger` (picklable: actor handles are)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def available(self, key: str) -> dict[str, int]:
        return cast("dict[str, int]", _ray_get(self.actor.available.remote(key)))

    def take(self, key: str, used: Mapping[str, int]) -> dict[str, int]:
        return cast("dict[str, int]", _ray_get(self.actor.take.remote(key, dict(used))))

    def finish(self, key: str, rounds: int) -> None:
        _ray_get(self.actor.finish.remote(key, rounds))

    def used(self) -> dict[str, int]:
        return cast("dict[str, int]", _ray_get(self.actor.used.remote()))

    @classmethod
    def start(cls, room: Mapping[str, int]) -> RayLedger:
        import ray

        # One ledger per run; it does no work, so it asks for no CPU and keeps every core
        # for the deciders.
        actor = ray.remote(num_cpus=0)(BudgetLedger).remote(dict(room))
        return cls(actor)


def _ray_get(ref: Any) -> Any:
    import ray

    return ray.get(ref)


def batch_key(batch: pa.Table | pa.RecordBatch, id_column: str) -> str:
    """A batch's identity for the ledger: a hash of its profile ids, so the same rows
    decided again share the key."""
    ids = batch.column(id_column).to_pylist()
    return xxhash.xxh3_128_hexdigest((f"{len(ids)}\x1e" + "\x1f".join(map(str, ids))).encode())


def offer_counts(decided: pa.RecordBatch, offers: Iterable[str], slots: int) -> dict[str, int]:
    """Impressions of each of ``offers`` in a batch of decisions (`decide_arrow`'s output)."""
    counts = dict.fromkeys(offers, 0)
    for slot in range(slots):
        column = decided.column(f"offer_{slot}").to_numpy(zero_copy_only=False)
        names, n = np.unique(column[column != None], return_counts=True)  # noqa: E711 (nulls)
        for name, count in zip(names, n, strict=True):
            if name in counts:
                counts[name] += int(count)
    return counts


__all__ = [
    "SAMPLE_ROWS",
    "BudgetLedger",
    "CampaignBudgets",
    "Ledger",
    "RayLedger",
    "batch_key",
    "offer_counts",
]
