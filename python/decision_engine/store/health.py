"""Whether the Redis store can reach Redis, with listeners told of every change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Health"]

log = logging.getLogger("decision_engine.store")


class Health:
    """Healthy until a Redis call fails (`degrade`), healthy again once the background
    probe has replayed the buffered writes (`recover`). Thread-safe."""

    def __init__(self, listener: Callable[[bool], None] | None = None) -> None:
        self._listeners: list[Callable[[bool], None]] = [] if listener is None else [listener]
        self._healthy = True
        self._lock = threading.Lock()

    @property
    def healthy(self) -> bool:
        return self._healthy

    def watch(self, listener: Callable[[bool], None]) -> None:
        """Calls `listener(healthy)` on every change (from any thread)."""
        self._listeners.append(listener)

    def degrade(self, exc: BaseException) -> None:
        with self._lock:  # logged before the flag flips: whoever sees the change finds its record
            if not self._healthy:
                return
            log.warning("redis unavailable: deciding degraded, buffering writes", extra={"error": str(exc)})
            self._healthy = False
        self._notify(False)

    def recover(self, lost: dict[str, int]) -> None:
        """Healthy again; `lost` counts what the outages so far cost (writes or statistics
        dropped by the buffers' bounds, writes Redis refused on replay)."""
        with self._lock:
            if self._healthy:
                return
            if any(lost.values()):
                log.warning("redis reachable again: buffered writes replayed, some lost", extra=lost)
            else:
                log.info("redis reachable again: buffered writes replayed")
            self._healthy = True
        self._notify(True)

    def _notify(self, healthy: bool) -> None:
        for listener in self._listeners:
            try:
                listener(healthy)
            except Exception:  # a listener's bug must stop neither decisions nor the recovery
                log.exception("health listener failed", extra={"healthy": healthy})
