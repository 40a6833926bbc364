"""Server interceptors for the decision_engine.v1 services: bearer-token auth and metrics.

Health and reflection pass through untouched (load balancers probe them without a token).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from decision_engine.server.metrics import Metrics

__all__ = ["AuthInterceptor", "MetricsInterceptor", "Tokens"]

PACKAGE = "/decision_engine.v1."
DECISION_SERVICE = "decision_engine.v1.DecisionService"
ADMIN_SERVICE = "decision_engine.v1.AdminService"

if TYPE_CHECKING:  # generic only in the type stubs
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], "Handler | None"]


@dataclass(frozen=True)
class Tokens:
    """Bearer tokens. The DecisionService needs the decision token when one is set (the admin
    token also grants it); the AdminService needs the admin token, and without one it is
    closed to every call (unless the server runs with `insecure_admin`)."""

    decision: str | None = None
    admin: str | None = None

    @property
    def enabled(self) -> bool:
        return self.decision is not None or self.admin is not None

    def __repr__(self) -> str:  # never print the tokens themselves
        return f"Tokens(decision={'set' if self.decision else None}, admin={'set' if self.admin else None})"


def _rewrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
    streams: bool = False,
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler with its behaviour wrapped; response-streaming handlers are kept
    unless `streams` (a refusal wraps them too: SubscribeDecisions needs its token)."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    if streams and handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    return handler


def _bearer(details: grpc.HandlerCallDetails) -> bytes | None:
    for key, value in details.invocation_metadata or ():
        if key == "authorization":
            scheme, _, token = (value if isinstance(value, str) else value.decode()).partition(" ")
            return token.strip().encode() if scheme.lower() == "bearer" else None
    return None


def _matches(given: bytes, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given, expected.encode())


ADMIN_CLOSED = (
    "the AdminService is closed: the server has no admin token; start it with --admin-token "
    "(or env DECISION_ENGINE_ADMIN_TOKEN; create_server(tokens=Tokens(admin=...)) in Python), "
    "or with --insecure-admin to open it to every client on a trusted network"
)


class AuthInterceptor(grpc.ServerInterceptor):
    """`authorization: Bearer <token>` metadata: UNAUTHENTICATED without a known token,
    PERMISSION_DENIED for a decision token on the AdminService, and for every AdminService
    call when no admin token is set and `insecure_admin` is not."""

    def __init__(self, tokens: Tokens, *, insecure_admin: bool = False) -> None:
        self.tokens = tokens
        self.insecure_admin = insecure_admin
        self._refusals: dict[tuple[str, grpc.StatusCode, str], Handler] = {}

    def _refusal(self, details: grpc.HandlerCallDetails) -> tuple[grpc.StatusCode, str] | None:
        method = details.method or ""
        admin = method.startswith(f"/{ADMIN_SERVICE}/")
        if not method.startswith(PACKAGE):
            return None  # health and reflection: probes need no token
        if admin and self.tokens.admin is None:
            return None if self.insecure_admin else (grpc.StatusCode.PERMISSION_DENIED, ADMIN_CLOSED)
        if not admin and self.tokens.decision is None:
            return None  # no decision token: the DecisionService is open
        given = _bearer(details)
        if given is None:
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                "missing bearer token (metadata 'authorization: Bearer <token>')",
            )
        if _matches(given, self.tokens.admin):
            return None
        if _matches(given, self.tokens.decision):
            if admin:
                return grpc.StatusCode.PERMISSION_DENIED, "the AdminService needs the admin token"
            return None
        return grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token"

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        refusal = self._refusal(handler_call_details)
        if handler is None or refusal is None:
            return handler
        key = (handler_call_details.method or "", *refusal)
        refusing = self._refusals.get(key)
        if refusing is None:
            refusing = self._refusals[key] = _rewrap(handler, _refuse(*refusal), streams=True)
        return refusing


def _refuse(code: grpc.StatusCode, message: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def refuse(_behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def abort(_request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(code, message)

        return abort

    return refuse


# The Decide fast path hands wire bytes to the core, so its placement label comes from the
# servicer, which notes it here (same thread as the interceptor's wrapper).
_noted = threading.local()


def note_placement(placements: list[str]) -> None:
    """Labels this call's metrics with the placement it decided (or "multiple")."""
    _noted.placement = placements[0] if len(placements) == 1 else ("multiple" if placements else None)


def _placement_of(request: Any) -> str | None:
    if isinstance(request, bytes):
        placement: str | None = getattr(_noted, "placement", None)
        _noted.placement = None
        return placement
    placement = getattr(request, "placement", None)
    if isinstance(placement, str):
        return placement
    many = getattr(request, "placements", None)
    if many is not None and len(many) == 1 and isinstance(many[0], str):
        return str(many[0])
    return "multiple" if many else None


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times every call of the decision_engine.v1 services, by method, placement
    (for Decide/DecideBatch) and status code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # (method, id of the handler) -> (handler, its timed wrapper): handlers are wrapped once,
        # not per call (the services' own and the auth refusals are the same objects every time)
        self._wrapped: dict[tuple[str, int], tuple[Handler, Handler]] = {}

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or not method.startswith(PACKAGE):
            return handler
        cached = self._wrapped.get((method, id(handler)))
        if cached is None:
            cached = self._wrapped[method, id(handler)] = (handler, self._wrap(method, handler))
        return cached[1]

    def _wrap(self, method: str, handler: Handler) -> Handler:
        name = method.removeprefix(PACKAGE)  # e.g. "DecisionService/Decide"
        metrics = self.metrics

        def timed(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def call(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                code = "UNKNOWN"
                try:
                    response = behaviour(request, context)
                    code = "OK"
                    return response
                finally:
                    status = getattr(context, "code", lambda: None)()
                    if status is not None:
                        code = status.name
                    placement = _placement_of(request)
                    label = "" if placement is None else metrics.placement_label(placement)
                    if placement == "multiple":
                        label = placement
                    metrics.observe_rpc(name, label, code, time.perf_counter() - start)

            return call

        return _rewrap(handler, timed)
