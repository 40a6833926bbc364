"""The /metrics endpoint on a bounded HTTP server.

prometheus_client's own server starts a thread per connection and keeps it as long as the
client keeps the connection open. This one answers on a fixed pool of threads: at most
`workers` connections are served and `backlog` more wait (holding a socket, not a thread);
past that a connection is closed at once, and a connection that sends nothing (or does not
finish its TLS handshake) within `timeout` seconds is closed. Optionally it needs a bearer
token (401 without it) and speaks TLS.
"""

from __future__ import annotations

import hmac
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["MetricsHttp", "serve_metrics"]

log = logging.getLogger("decision_engine.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass


class _BoundedServer(WSGIServer):
    """Requests on a pool of `workers` threads, at most `backlog` more queued."""

    def __init__(self, address: tuple[str, int], workers: int, backlog: int, timeout: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _QuietHandler)
        self.timeout_seconds = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrics-http")
        self._slots = threading.BoundedSemaphore(workers + backlog)
        self.refused = 0  # connections closed because every slot was taken

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(self.timeout_seconds)
            if isinstance(request, ssl.SSLSocket):
                request.do_handshake()  # here, on a pool thread, not in the accept loop
            self.finish_request(request, client_address)
        except (OSError, ssl.SSLError):
            pass  # a client that went away, timed out or failed TLS: nothing to answer
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _with_token(app: WSGIApp, token: str) -> WSGIApp:
    expected = f"Bearer {token}".encode()

    def authorized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
        return [b"/metrics needs the header 'Authorization: Bearer <metrics token>'\n"]

    return authorized


class MetricsHttp:
    """The running endpoint; `port` is the one bound (useful with port 0)."""

    def __init__(self, server: _BoundedServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    @property
    def refused(self) -> int:
        return self._server.refused

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    token: str | None = None,
    tls: ssl.SSLContext | None = None,
    workers: int = 2,
    backlog: int = 8,
    timeout: float = 5.0,
) -> MetricsHttp:
    """Starts /metrics for `registry` on host:port (port 0: any free port)."""
    server = _BoundedServer((host, port), workers, backlog, timeout)
    app: WSGIApp = make_wsgi_app(registry)
    server.set_app(app if token is None else _with_token(app, token))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return MetricsHttp(server, thread)
