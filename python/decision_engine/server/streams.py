"""Streaming calls hold a thread each for as long as they last, so they get a bound of their
own: past `max_streams` streaming calls at once, more are refused with RESOURCE_EXHAUSTED, and
the server's pool has that many threads beyond those of unary calls (`Limits.pool_threads`),
so idle streams never starve Decide or the health check. A request stream that waits longer
than `stream_idle_seconds` for its next message is cancelled (the client sees CANCELLED).

Every streaming method of the server passes through `StreamLimitInterceptor`: ReportOutcomes,
health Watch and reflection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

__all__ = ["StreamGuard", "StreamLimitInterceptor"]

log = logging.getLogger("decision_engine.server")

if TYPE_CHECKING:  # generic only in the type stubs
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], "Handler | None"]


@dataclass
class _Stream:
    id: int
    method: str
    context: grpc.ServicerContext
    waiting_since: float | None = None  # monotonic time the handler started waiting for a message
    cancelled: bool = False


class StreamGuard:
    """Slots for streaming calls, and a reaper thread that cancels request streams idle too long."""

    def __init__(self, max_streams: int, idle_seconds: float) -> None:
        self.max_streams = max_streams
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._watched: dict[int, _Stream] = {}
        self._next_id = 0
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self.cancelled_idle = 0  # streams cancelled for idling, since start

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._watched)

    def start(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="grpc-stream-reaper", daemon=True)
            self._reaper.start()

    def close(self) -> None:
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=5)

    def enter(self, method: str, context: grpc.ServicerContext) -> _Stream | None:
        """A slot for this call, or None when every slot is taken."""
        with self._lock:
            if len(self._watched) >= self.max_streams:
                return None
            self._next_id += 1
            stream = self._watched[self._next_id] = _Stream(self._next_id, method, context)
            return stream

    def leave(self, stream: _Stream) -> None:
        with self._lock:
            self._watched.pop(stream.id, None)

    def watch(self, stream: _Stream, requests: Iterable[Any]) -> Iterator[Any]:
        """`requests`, timing each wait for the next message."""
        iterator = iter(requests)
        while True:
            stream.waiting_since = time.monotonic()
            try:
                request = next(iterator)
            except StopIteration:
                return
            finally:
                stream.waiting_since = None
            yield request

    def _reap(self) -> None:
        period = min(1.0, self.idle_seconds / 4)
        while not self._stop.wait(period):
            now = time.monotonic()
            with self._lock:
                idle = [
                    s
                    for s in self._watched.values()
                    if not s.cancelled
                    and s.waiting_since is not None
                    and now - s.waiting_since > self.idle_seconds
                ]
                for stream in idle:
                    stream.cancelled = True
            for stream in idle:
                self.cancelled_idle += 1
                log.info(
                    "stream cancelled: no message within the idle timeout",
                    extra={"rpc": stream.method, "idle_seconds": self.idle_seconds},
                )
                stream.context.cancel()


def _refuse(context: grpc.ServicerContext, limit: int) -> None:
    context.abort(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"too many streaming calls at once (the limit is {limit}); retry later",
    )


class StreamLimitInterceptor(grpc.ServerInterceptor):
    """Wraps every streaming handler (once per handler) with the guard's slot and idle watch."""

    def __init__(self, guard: StreamGuard) -> None:
        self.guard = guard
        self._wrapped: dict[tuple[str, int], tuple[Handler, Handler]] = {}

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler
        method = handler_call_details.method or ""
        cached = self._wrapped.get((method, id(handler)))
        if cached is None:
            cached = self._wrapped[method, id(handler)] = (handler, self._wrap(method, handler))
        return cached[1]

    def _wrap(self, method: str, handler: Handler) -> Handler:
        guard = self.guard
        codec = (handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary is not None:
            stream_unary = handler.stream_unary

            def guarded_stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                stream = guard.enter(method, context)
                if stream is None:
                    _refuse(context, guard.max_streams)
                    return None
                try:
                    return stream_unary(guard.watch(stream, requests), context)
                finally:
                    guard.leave(stream)

            return grpc.stream_unary_rpc_method_handler(guarded_stream_unary, *codec)
        if handler.stream_stream is not None:
            stream_stream = handler.stream_stream

            def guarded_stream_stream(
                requests: Iterator[Any], context: grpc.ServicerContext
            ) -> Iterator[Any]:
                stream = guard.enter(method, context)
                if stream is None:
                    _refuse(context, guard.max_streams)
                    return
                try:
                    yield from stream_stream(guard.watch(stream, requests), context)
                finally:
                    guard.leave(stream)

            return grpc.stream_stream_rpc_method_handler(guarded_stream_stream, *codec)
        unary_stream = handler.unary_stream
        assert unary_stream is not None  # a response-streaming handler with one request

        def guarded_unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            stream = guard.enter(method, context)  # no idle watch: health Watch is idle by design
            if stream is None:
                _refuse(context, guard.max_streams)
                return
            try:
                yield from unary_stream(request, context)
            finally:
                guard.leave(stream)

        return grpc.unary_stream_rpc_method_handler(guarded_unary_stream, *codec)
