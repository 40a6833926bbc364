"""`decision-engine serve`: run the server until SIGTERM, reload the catalog on SIGHUP, and
optionally fork worker processes that share one port (SO_REUSEPORT).

Workers are forked before any of them creates an engine or a gRPC server (the pattern of
grpc's examples/python/multiprocessing). Each worker has its own engine: its own learned
state and pending decisions, unless they keep their state in Redis (the catalog's
`store: {type: redis}` or `--store redis://...`), each worker then being one server of it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

from decision_engine.catalog import LoadedCatalog, load_catalog
from decision_engine.engine import Engine
from decision_engine.errors import CatalogError, StorageError
from decision_engine.server.catalogs import issues_of
from decision_engine.server.interceptors import Tokens
from decision_engine.server.limits import Limits
from decision_engine.server.metrics import Metrics
from decision_engine.server.server import TlsConfig, create_server

__all__ = ["ServeOptions", "serve", "split_address"]

log = logging.getLogger("decision_engine.server")

POLL_SECONDS = 0.05  # how often the main loop looks at the signal flags


@dataclass(frozen=True)
class ServeOptions:
    catalog: Path
    address: str = "127.0.0.1:50051"
    metrics_host: str | None = None  # default: the host of `address`
    metrics_port: int | None = 9464  # None: no endpoint; 0: any free port; worker i uses port + i
    tokens: Tokens = field(default_factory=Tokens)
    insecure_admin: bool = False  # the AdminService without a token (logged as a warning)
    tls: TlsConfig | None = None
    metrics_token: str | None = None  # bearer token /metrics requires
    metrics_tls: tuple[Path, Path] | None = None  # (certificate chain, key) PEM files for /metrics
    workers: int = 1
    grace: float = 10.0
    limits: Limits = field(default_factory=Limits)
    seed: int = 0  # worker i seeds its engine with seed + i
    max_pending: int | None = None  # None: the core's default
    max_clock_skew: float | None = None  # None: the core's default
    store: str | None = None  # redis://... or redis+cluster://... overrides the catalog's `store:` section


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of "host:port" or "[v6]:port"."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address must be host:port, got {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Signals:
    """SIGTERM/SIGINT ask to stop, SIGHUP to reload; handlers only set flags."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload = True


def _state_dir(options: ServeOptions, catalog: LoadedCatalog, worker: int) -> Path | None:
    """The embedded store's directory for this worker: the catalog's ``store.path`` (relative
    to the catalog file), one subdirectory per worker when there are several (each worker
    keeps its own state); None when the state is in Redis."""
    store = catalog.model.store
    if options.store is not None or store.type != "embedded" or store.path is None:
        return None
    path = Path(options.catalog).parent / store.path
    return path / f"worker-{worker}" if options.workers > 1 else path


def _serve_worker(options: ServeOptions, worker: int, *, reuse_port: bool) -> int:
    """Serves until SIGTERM/SIGINT; the exit code."""
    signals = _Signals()
    context = {"worker": worker, "pid": os.getpid()}
    try:
        catalog = load_catalog(options.catalog)
        engine = Engine(
            catalog,
            seed=options.seed + worker,
            state_dir=_state_dir(options, catalog, worker),
            max_pending=options.max_pending,
            max_clock_skew=options.max_clock_skew,
            store_url=options.store,
        )
    except CatalogError as exc:
        log.error("invalid catalog: %s", exc, extra={**context, "issues": [str(i) for i in issues_of(exc)]})
        return 1
    except StorageError as exc:
        log.error("cannot open the state store: %s", exc, extra=context)
        return 1
    if engine.recovery is not None:
        log.info("state recovered", extra={**context, **engine.recovery})
    health = engine.store_health()
    if engine.shared_store is not None and health is not None:
        log.info(
            "sharing state through redis",
            extra={**context, "server": health["server"], "prefix": engine.shared_store.key_prefix},
        )
    metrics = Metrics()
    host, _ = split_address(options.address)
    try:
        server, port = create_server(
            options.address,
            engine,
            tokens=options.tokens,
            insecure_admin=options.insecure_admin,
            tls=options.tls,
            limits=options.limits,
            metrics=metrics,
            reuse_port=reuse_port,
            worker=worker,
        )
        http = None
        if options.metrics_port is not None:
            metrics_port = options.metrics_port + worker if options.metrics_port else 0
            http = metrics.serve_http(
                options.metrics_host or host,
                metrics_port,
                token=options.metrics_token,
                tls=_metrics_tls(options.metrics_tls),
            )
    except (OSError, RuntimeError) as exc:
        log.error("cannot listen", extra={**context, "address": options.address, "error": str(exc)})
        return 1
    server.start()
    log.info(
        "serving",
        extra={
            **context,
            "address": _join(host, port),
            "port": port,
            "metrics_port": None if http is None else http.port,
            "catalog": str(options.catalog),
            "tls": options.tls is not None,
            "auth": options.tokens.enabled,
            "admin": "token" if options.tokens.admin else "open" if options.insecure_admin else "closed",
            "metrics_auth": options.metrics_token is not None,
            "metrics_tls": options.metrics_tls is not None,
        },
    )
    while not signals.stop:
        if signals.reload:
            signals.reload = False
            server.reload_catalog(options.catalog)
        time.sleep(POLL_SECONDS)
    stopped = server.stop(options.grace)
    log.info(
        "stopping: new calls refused, draining calls in flight",
        extra={**context, "grace_seconds": options.grace},
    )
    stopped.wait()
    try:
        engine.close()  # a Redis store's last snapshot of what the policies learned
    except StorageError as exc:  # the next server to start learns from the stream instead
        log.warning("no last policy snapshot: %s", exc, extra=context)
    if http is not None:
        http.close()
    log.info("stopped", extra=context)
    return 0


def _metrics_tls(files: tuple[Path, Path] | None) -> ssl.SSLContext | None:
    if files is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*files)
    return context


def _worker_main(options: ServeOptions, worker: int) -> None:
    sys.exit(_serve_worker(options, worker, reuse_port=True))


@contextmanager
def _reserved_port(host: str, port: int) -> Iterator[int]:
    """Binds (without listening) host:port with SO_REUSEPORT so port 0 resolves once for all
    workers; grpc examples/python/multiprocessing does the same."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def _serve_workers(options: ServeOptions) -> int:
    host, port = split_address(options.address)
    with _reserved_port(host, port) as bound:
        options = replace(options, address=_join(host, bound))
        fork = multiprocessing.get_context("fork")
        workers = [
            fork.Process(target=_worker_main, args=(options, i), name=f"decision-engine-worker-{i}")
            for i in range(options.workers)
        ]
        for process in workers:
            process.start()
        signals = _Signals()  # after the fork: workers install their own
        log.info("workers started", extra={"address": options.address, "pids": [p.pid for p in workers]})
        stopping = False
        while any(p.is_alive() for p in workers):
            failed = [p for p in workers if p.exitcode not in (None, 0)]
            if (signals.stop or failed) and not stopping:
                if failed:
                    log.error("a worker failed; stopping the others", extra={"pids": [p.pid for p in failed]})
                stopping = True
                _signal_all(workers, signal.SIGTERM)
            if signals.reload:
                signals.reload = False
                _signal_all(workers, signal.SIGHUP)
            time.sleep(POLL_SECONDS)
    codes = [p.exitcode or 0 for p in workers]
    return next((code if code > 0 else 1 for code in codes if code), 0)


def _signal_all(workers: Sequence[multiprocessing.process.BaseProcess], signum: int) -> None:
    for process in workers:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signum)


def serve(options: ServeOptions) -> int:
    """Runs the server (or its workers) until SIGTERM; the exit code."""
    if options.workers > 1:
        return _serve_workers(options)
    return _serve_worker(options, 0, reuse_port=False)
