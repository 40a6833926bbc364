"""Decision ids on the wire: the engine's id with the process that made it in the top bits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from decision_engine.errors import UnknownDecisionError

__all__ = ["GLOBAL_IDS", "WORKER_BITS", "DecisionIds"]

WORKER_BITS = 8


@dataclass(frozen=True)
class DecisionIds:
    """Decision ids on the wire carry the worker process that made them in their top 8 bits
    (0 for a single process), so an outcome that reaches another worker is refused instead
    of being credited to that worker's decision with the same engine id.

    An engine on the Redis store makes ids that are unique across servers already (see
    `GLOBAL_IDS`)."""

    worker: int = 0
    worker_bits: int = WORKER_BITS

    def __post_init__(self) -> None:
        if not 0 <= self.worker < 1 << self.worker_bits:
            raise ValueError(f"worker index must be in [0, {1 << self.worker_bits})")

    @property
    def _id_bits(self) -> int:
        return 64 - self.worker_bits

    def to_wire(self, engine_id: int) -> int:
        return (self.worker << self._id_bits) | engine_id

    def to_wire_array(self, engine_ids: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        return engine_ids | np.uint64(self.worker << self._id_bits)

    def worker_of(self, wire_id: int) -> int:
        return wire_id >> self._id_bits

    def engine_id(self, wire_id: int) -> int:
        return wire_id & ((1 << self._id_bits) - 1)

    def from_wire(self, wire_id: int) -> int:
        worker = self.worker_of(wire_id)
        if worker != self.worker:
            raise UnknownDecisionError(
                f"unknown decision id {wire_id}: it was made by worker {worker} and this is worker "
                f"{self.worker}; each worker keeps its own decisions, report on the same connection"
            )
        return self.engine_id(wire_id)


GLOBAL_IDS = DecisionIds(worker_bits=0)
"""Ids passed through unchanged: those of an engine on the Redis store, which carry its server
number from Redis in their top bits, so that any server takes any server's outcomes."""
