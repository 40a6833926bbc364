"""Prometheus metrics on their own HTTP port, and the counters behind AdminService.GetStats.

Every server gets its own registry, so tests can run several servers in one process.
Label values are bounded: methods are the services' own, placements and offers come from
the catalog in force (anything else is counted as "unknown"), codes are gRPC status names.
Besides the services' own metrics: the process's memory, CPU and open files (`process_*`,
Linux), the Python version, and whether the state store answers.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from decision_engine.server.metrics_http import MetricsHttp, serve_metrics

__all__ = ["LATENCY_BUCKETS", "Metrics", "MetricsHttp", "Stats", "StatsSnapshot"]

# Seconds: from a fast Decide (tens of microseconds in the engine) to a large DecideBatch.
LATENCY_BUCKETS = (
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


@dataclass(frozen=True)
class StatsSnapshot:
    decisions: int
    batch_profiles: int
    outcomes: int
    rejected_outcomes: int
    catalog_reloads: int
    failed_catalog_reloads: int
    uptime_seconds: float


class Stats:
    """Plain counters of this process, read by GetStats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._counts = dict.fromkeys(
            ("decisions", "batch_profiles", "outcomes", "rejected_outcomes", "catalog_reloads",
             "failed_catalog_reloads"),
            0,
        )  # fmt: skip

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(**self._counts, uptime_seconds=time.monotonic() - self._started)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.stats = Stats()
        self._placements: Callable[[], frozenset[str]] = frozenset
        self._rpc_children: dict[tuple[str, str, str], tuple[Counter, Histogram, Counter | None]] = {}
        self._decision_children: dict[tuple[str, str], Counter] = {}
        r = self.registry
        self.requests = Counter(
            "decision_engine_rpc_requests", "RPCs handled, by method, placement and status code.",
            ["method", "placement", "code"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "decision_engine_rpc_duration_seconds", "Time to handle an RPC, by method and placement.",
            ["method", "placement"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "decision_engine_rpc_errors", "RPCs that ended with an error, by method and status code.",
            ["method", "code"], registry=r,
        )  # fmt: skip
        self.decisions = Counter(
            "decision_engine_decisions", "Offers chosen, by placement and offer (offer '' = no offer).",
            ["placement", "offer"], registry=r,
        )  # fmt: skip
        self.outcomes = Counter(
            "decision_engine_outcomes", "Outcomes reported, by result (accepted or a status code).",
            ["result"], registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            "decision_engine_catalog_reloads", "Catalog replacements, by result (ok, invalid).",
            ["result"], registry=r,
        )  # fmt: skip
        self.pending = Gauge(
            "decision_engine_pending_decisions", "Decisions awaiting at least one outcome.", registry=r
        )
        self.store_healthy = Gauge(
            "decision_engine_store_healthy",
            "1 while the state store answers, 0 while it is unavailable (decisions go on, degraded).",
            ["store"], registry=r,
        )  # fmt: skip
        self.store_healthy.labels("embedded").set(1)  # in-process: up while the process is
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def watch(self, placements: Callable[[], frozenset[str]], pending: Callable[[], float]) -> None:
        """Where the catalog's placement ids and the pending decision count are read from."""
        self._placements = placements
        self.pending.set_function(pending)

    def watch_store(self, healthy: Callable[[], bool]) -> None:
        """A shared (Redis) store's health, read at each scrape, in place of the embedded one."""
        self.store_healthy.remove("embedded")
        self.store_healthy.labels("redis").set_function(lambda: float(healthy()))

    def placement_label(self, placement: str) -> str:
        return placement if placement in self._placements() else "unknown"

    def observe_rpc(self, method: str, placement: str, code: str, seconds: float) -> None:
        key = (method, placement, code)
        children = self._rpc_children.get(key)
        if children is None:  # label lookups cost more than the observation: keep the children
            error = self.errors.labels(method, code) if code != "OK" else None
            children = self.requests.labels(*key), self.latency.labels(method, placement), error
            self._rpc_children[key] = children
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def decided(self, placement: str, offer_ids: Iterable[str]) -> None:
        """One Decide decision in `placement` showing `offer_ids`."""
        self.stats.add("decisions")
        chosen = False
        for offer in offer_ids:
            self._decision_child(placement, offer).inc()
            chosen = True
        if not chosen:
            self._decision_child(placement, "").inc()

    def _decision_child(self, placement: str, offer: str) -> Counter:
        child = self._decision_children.get((placement, offer))
        if child is None:
            child = self._decision_children[placement, offer] = self.decisions.labels(placement, offer)
        return child

    def batch_decided(self, placement: str, rows: int, offer_counts: Iterable[tuple[str, int]]) -> None:
        self.stats.add("batch_profiles", rows)
        for offer, count in offer_counts:
            self.decisions.labels(placement, offer).inc(count)

    def outcome(self, result: str) -> None:
        self.stats.add("outcomes" if result == "accepted" else "rejected_outcomes")
        self.outcomes.labels(result).inc()

    def catalog_reload(self, ok: bool) -> None:
        self.stats.add("catalog_reloads" if ok else "failed_catalog_reloads")
        self.reloads.labels("ok" if ok else "invalid").inc()

    def serve_http(
        self, host: str, port: int, *, token: str | None = None, tls: ssl.SSLContext | None = None
    ) -> MetricsHttp:
        """Starts the /metrics endpoint on host:port (port 0: any free port), behind a bearer
        `token` and over TLS when given (see metrics_http)."""
        return serve_metrics(self.registry, host, port, token=token, tls=tls)
