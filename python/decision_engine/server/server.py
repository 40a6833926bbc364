"""The gRPC server: DecisionService, AdminService, ProfileService and TriggerService over one
engine, with the standard health service, reflection (v1 and v1alpha), auth, metrics and
stream-limit interceptors, TLS, the limits of `Limits` (connections, calls, streams, message
sizes) and the ticker that fires due trigger instances.

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

from decision_engine.engine import Engine
from decision_engine.ids import GLOBAL_IDS
from decision_engine.server.catalogs import CatalogManager
from decision_engine.server.converters import DecisionIds
from decision_engine.server.errors import tolerant
from decision_engine.server.interceptors import (
    ADMIN_SERVICE,
    DECISION_SERVICE,
    AuthInterceptor,
    MetricsInterceptor,
    Tokens,
)
from decision_engine.server.limits import Limits
from decision_engine.server.metrics import Metrics
from decision_engine.server.profiles import PROFILE_SERVICE, ProfileServicer, register_profile_service
from decision_engine.server.reflection import enable_reflection
from decision_engine.server.servicers import AdminServicer, DecisionServicer
from decision_engine.server.store_health import STORE_SERVICE, StoreHealthWatch
from decision_engine.server.streams import StreamGuard, StreamLimitInterceptor
from decision_engine.server.triggers import (
    TRIGGER_SERVICE,
    TriggerServicer,
    register_trigger_service,
)
from decision_engine.v1 import admin_pb2_grpc, decision_pb2_grpc

__all__ = ["DecisionServer", "Limits", "TlsConfig", "create_server"]

log = logging.getLogger("decision_engine.server")

SERVICES = (DECISION_SERVICE, ADMIN_SERVICE, PROFILE_SERVICE, TRIGGER_SERVICE)


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
        streams: StreamGuard,
        store_health: StoreHealthWatch | None = None,
        insecure_admin: bool = False,
        triggers: TriggerServicer | None = None,
    ) -> None:
        self.grpc_server = server
        self.triggers = triggers
        self.health = health
        self.engine = engine
        self.catalogs = catalogs
        self.metrics = metrics
        self.streams = streams
        self.store_health = store_health
        self.insecure_admin = insecure_admin

    def start(self) -> None:
        if self.insecure_admin:
            log.warning(
                "the AdminService is open to every client (--insecure-admin): anyone who can reach "
                "this port can read and replace the catalog; give an admin token instead"
            )
        self.streams.start()
        if self.triggers is not None:
            self.triggers.start()  # the ticker that fires due trigger instances
        self.grpc_server.start()
        for service in ("", *SERVICES):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if self.store_health is not None:
            self.store_health.start()

    def stop(self, grace: float | None = None) -> threading.Event:
        """Reports NOT_SERVING, refuses new calls and lets calls in flight finish for up to
        `grace` seconds (None: cancels them at once). The event is set when all is done."""
        self.health.enter_graceful_shutdown()
        if self.store_health is not None:
            self.store_health.stop()
        if self.triggers is not None:
            self.triggers.stop()  # subscriptions end at their next poll
        stopped = self.grpc_server.stop(grace)
        self.streams.close()
        return stopped

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


def _tolerant(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with a request deserializer that hands malformed bodies to the method (which
    answers INVALID_ARGUMENT) instead of failing inside grpc (INTERNAL and a traceback)."""
    if handler.request_deserializer is None:
        return handler
    codec = (tolerant(handler.request_deserializer), handler.response_serializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(handler.unary_unary, *codec)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(handler.stream_unary, *codec)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(handler.unary_stream, *codec)
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(handler.stream_stream, *codec)


def _register(
    server: grpc.Server,
    service: str,
    add_to_server: Any,
    servicer: object,
    **overrides: grpc.RpcMethodHandler[Any, Any],
) -> None:
    """The generated handlers of `service` (with tolerant deserializers), some replaced."""
    capture = _HandlerCapture()
    add_to_server(servicer, capture)
    handlers = {name: _tolerant(h) for name, h in capture.handlers.items()} | overrides
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def register_decision_service(server: grpc.Server, servicer: DecisionServicer) -> None:
    """The generated handlers, except Decide, which takes and returns wire bytes: the Rust
    core decodes the request and encodes the response itself (the fast path)."""
    decide: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(servicer.Decide)
    add = decision_pb2_grpc.add_DecisionServiceServicer_to_server
    _register(server, DECISION_SERVICE, add, servicer, Decide=decide)


def create_server(
    address: str,
    engine: Engine,
    *,
    tokens: Tokens | None = None,
    insecure_admin: bool = False,
    tls: TlsConfig | None = None,
    limits: Limits | None = None,
    metrics: Metrics | None = None,
    reuse_port: bool = False,
    worker: int = 0,
) -> tuple[DecisionServer, int]:
    """A server (not started yet) for `engine` bound to `address` ("host:port", port 0 for
    any free one), and the port it bound.

    The AdminService needs `tokens.admin`; without one it refuses every call, unless
    `insecure_admin` opens it to any client (logged as a warning at start). `limits` bounds
    what clients can take (see limits.Limits). `reuse_port` lets several worker processes
    bind the same port (SO_REUSEPORT); `worker` is this process's index among them, carried
    in the decision ids it hands out. An engine on the Redis store serves every call the same
    way (its core keeps the state in Redis), with its ids passed through unchanged, since they
    are unique across servers already; the health of `decision_engine.v1.Store` follows the
    store's (see store_health), and its triggers fire and deliver for every server.
    """
    tokens = tokens or Tokens()
    if insecure_admin and tokens.admin is not None:
        raise ValueError("insecure_admin opens the AdminService without a token: give it or an admin token")
    limits = limits or Limits()
    metrics = metrics if metrics is not None else Metrics()
    catalogs = CatalogManager(engine, on_reload=metrics.catalog_reload)
    metrics.watch(lambda: catalogs.placement_ids, lambda: engine.pending_decisions)
    shared = engine.store_health() is not None
    streams = StreamGuard(limits.max_streams, limits.stream_idle_seconds)
    interceptors: list[grpc.ServerInterceptor] = [
        MetricsInterceptor(metrics),
        AuthInterceptor(tokens, insecure_admin=insecure_admin),
        StreamLimitInterceptor(streams),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.pool_threads, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[*limits.grpc_options(), ("grpc.so_reuseport", 1 if reuse_port else 0)],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
    )
    ids = GLOBAL_IDS if shared else DecisionIds(worker)
    register_decision_service(server, DecisionServicer(engine, metrics, limits, ids))
    register_profile_service(server, ProfileServicer(engine), _register)
    triggers = TriggerServicer(engine, ids)
    register_trigger_service(server, triggers, _register)
    add_admin = admin_pb2_grpc.add_AdminServiceServicer_to_server
    _register(server, ADMIN_SERVICE, add_admin, AdminServicer(engine, catalogs, metrics, limits))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", *SERVICES, *([STORE_SERVICE] if shared else [])):
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    store_health = StoreHealthWatch(engine, health_servicer) if shared else None
    if store_health is not None:
        metrics.watch_store(lambda: store_health.healthy)
    enable_reflection((*SERVICES, health.SERVICE_NAME), server)
    if tls is not None:
        credentials = grpc.ssl_server_credentials([(tls.private_key, tls.cert_chain)])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    decision_server = DecisionServer(
        server,
        health_servicer,
        engine,
        catalogs,
        metrics,
        streams,
        store_health,
        insecure_admin=insecure_admin,
        triggers=triggers,
    )
    return decision_server, port
