"""The Redis store's health on a server: the standard health service's status of the service
name `decision_engine.v1.Store` (SERVING, or NOT_SERVING while the store is degraded) and the
metrics' store gauge. The server itself ("" and its services) stays SERVING while the store is
degraded, since decisions go on.

The core flips its flag from whichever thread meets Redis failing or answering again; a
small thread polls it, so nothing on the request path waits for the health service.
"""

from __future__ import annotations

import logging
import threading

from grpc_health.v1 import health, health_pb2

from decision_engine.engine import Engine

__all__ = ["STORE_SERVICE", "StoreHealthWatch"]

STORE_SERVICE = "decision_engine.v1.Store"

POLL_SECONDS = 0.25  # the core probes an unreachable Redis as often

log = logging.getLogger("decision_engine.server")


class StoreHealthWatch:
    """Polls `engine.store_health()` from `start()` to `stop()` and sets the status of
    `STORE_SERVICE` on `service` whenever the store's health changes."""

    def __init__(self, engine: Engine, service: health.HealthServicer) -> None:
        self.engine = engine
        self.service = service
        self.healthy = self._read()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-health", daemon=True)

    def _read(self) -> bool:
        state = self.engine.store_health()
        return state is not None and bool(state["healthy"])

    def _publish(self) -> None:
        status = health_pb2.HealthCheckResponse
        self.service.set(STORE_SERVICE, status.SERVING if self.healthy else status.NOT_SERVING)

    def start(self) -> None:
        self.healthy = self._read()
        self._publish()
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            healthy = self._read()
            if healthy != self.healthy:
                self.healthy = healthy
                if healthy:
                    log.info("redis store reachable again: buffered decisions written")
                else:
                    log.warning("redis store unavailable: deciding without it, outcomes refused")
                self._publish()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
