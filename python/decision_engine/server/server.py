"""The gRPC server: DecisionService and AdminService over one engine, with the standard
health service, reflection, auth and metrics interceptors, TLS and message limits.

>>> server, port = create_server("127.0.0.1:0", engine)  # doctest: +SKIP
>>> server.start()  # doctest: +SKIP
>>> server.stop(grace=5).wait()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from decision_engine.engine import Engine
from decision_engine.server.catalogs import CatalogManager
from decision_engine.server.converters import DecisionIds
from decision_engine.server.interceptors import (
    ADMIN_SERVICE,
    DECISION_SERVICE,
    AuthInterceptor,
    MetricsInterceptor,
    Tokens,
)
from decision_engine.server.metrics import Metrics
from decision_engine.server.servicers import AdminServicer, DecisionServicer, Limits
from decision_engine.server.store_servicer import STORE_SERVICE, StoreDecisionServicer
from decision_engine.store import RedisStore
from decision_engine.v1 import admin_pb2_grpc, decision_pb2_grpc

__all__ = ["DecisionServer", "TlsConfig", "create_server"]

log = logging.getLogger("decision_engine.server")

SERVICES = (DECISION_SERVICE, ADMIN_SERVICE)
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_THREADS = 16


@dataclass(frozen=True, repr=False)
class TlsConfig:
    """A PEM certificate chain and its private key."""

    cert_chain: bytes
    private_key: bytes

    @classmethod
    def from_files(cls, cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> TlsConfig:
        return cls(Path(cert).read_bytes(), Path(key).read_bytes())

    def __repr__(self) -> str:
        return "TlsConfig(...)"


class DecisionServer:
    """A grpc.Server with the health status, catalog reloads and metrics of its services."""

    def __init__(
        self,
        server: grpc.Server,
        health: health.HealthServicer,
        engine: Engine,
        catalogs: CatalogManager,
        metrics: Metrics,
        store: RedisStore | None = None,
    ) -> None:
        self.grpc_server = server
        self.health = health
        self.engine = engine
        self.catalogs = catalogs
        self.metrics = metrics
        self.store = store
        self._started = False

    def start(self) -> None:
        self.grpc_server.start()
        self._started = True
        for service in ("", *SERVICES):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if self.store is not None:
            self.store.watch_health(self._store_health)
            self._store_health(self.store.healthy)

    def _store_health(self, healthy: bool) -> None:
        """The Redis store's state as the health of `decision_engine.v1.Store`; the server
        stays SERVING while the store is degraded, since decisions go on."""
        if self._started:
            status = health_pb2.HealthCheckResponse
            self.health.set(STORE_SERVICE, status.SERVING if healthy else status.NOT_SERVING)

    def stop(self, grace: float | None = None) -> threading.Event:
        """Reports NOT_SERVING, refuses new calls and lets calls in flight finish for up to
        `grace` seconds (None: cancels them at once). The event is set when all is done."""
        self._started = False
        self.health.enter_graceful_shutdown()
        return self.grpc_server.stop(grace)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self.grpc_server.wait_for_termination(timeout)

    def reload_catalog(self, path: str | os.PathLike[str]) -> bool:
        """Reloads the catalog file atomically; an invalid file is logged and changes nothing."""
        return self.catalogs.reload(path)


class _HandlerCapture:
    """Stands in for a server to collect the generated method handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, _handlers: object) -> None:
        pass

    def add_registered_method_handlers(
        self, _service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.handlers = dict(handlers)


def register_decision_service(server: grpc.Server, servicer: DecisionServicer) -> None:
    """The generated handlers, except Decide, which takes and returns wire bytes: the Rust
    core decodes the request and encodes the response itself (the fast path)."""
    capture = _HandlerCapture()
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(servicer, capture)
    handlers = capture.handlers
    handlers["Decide"] = grpc.unary_unary_rpc_method_handler(servicer.Decide)
    service = "decision_engine.v1.DecisionService"
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def create_server(
    address: str,
    engine: Engine,
    *,
    tokens: Tokens | None = None,
    tls: TlsConfig | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_batch: int = Limits.max_batch,
    threads: int = DEFAULT_THREADS,
    metrics: Metrics | None = None,
    reuse_port: bool = False,
    worker: int = 0,
    store: RedisStore | None = None,
) -> tuple[DecisionServer, int]:
    """A server (not started yet) for `engine` bound to `address` ("host:port", port 0 for
    any free one), and the port it bound.

    `reuse_port` lets several worker processes bind the same port (SO_REUSEPORT); `worker`
    is this process's index among them, carried in the decision ids it hands out. With a
    Redis `store`, decisions, outcomes and releases go through it (see store_servicer).
    """
    metrics = metrics if metrics is not None else Metrics()
    catalogs = CatalogManager(engine, on_reload=metrics.catalog_reload)
    metrics.watch(lambda: catalogs.placement_ids, lambda: engine.pending_decisions)
    interceptors: list[grpc.ServerInterceptor] = [
        MetricsInterceptor(metrics),
        AuthInterceptor(tokens or Tokens()),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    limits = Limits(max_batch=max_batch)
    if store is None:
        servicer = DecisionServicer(engine, metrics, limits, DecisionIds(worker))
    else:
        servicer = StoreDecisionServicer(store, metrics, limits)
    register_decision_service(server, servicer)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminServicer(engine, catalogs, metrics, limits), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", *SERVICES, *([STORE_SERVICE] if store else [])):
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME),
        server,
    )
    if tls is not None:
        credentials = grpc.ssl_server_credentials([(tls.private_key, tls.cert_chain)])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    return DecisionServer(server, health_servicer, engine, catalogs, metrics, store), port
