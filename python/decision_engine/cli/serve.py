"""`decision-engine serve`: decisions over gRPC until SIGTERM; SIGHUP reloads the catalog."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

# grpc core writes its own plain-text lines to stderr, which would break the JSON log; its
# verbosity is read once, when grpc is first imported (below, through the server package).
# GRPC_VERBOSITY=ERROR in the environment brings them back.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from decision_engine import _core
from decision_engine.server.limits import Limits

DEFAULTS = Limits()


@click.command()
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Catalog YAML; SIGHUP reloads it (an invalid file is logged and the old catalog stays).",
)
@click.option(
    "--address", default="127.0.0.1:50051", show_default=True, help="host:port to listen on (port 0: any)."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0),
    default=9464,
    show_default=True,
    help="Prometheus /metrics port on the --address host (0: any free port); worker i uses PORT + i.",
)
@click.option("--no-metrics", is_flag=True, help="Serve no /metrics endpoint.")
@click.option(
    "--decision-token",
    envvar="DECISION_ENGINE_DECISION_TOKEN",
    default=None,
    help="Bearer token the DecisionService requires (env DECISION_ENGINE_DECISION_TOKEN).",
)
@click.option(
    "--admin-token",
    envvar="DECISION_ENGINE_ADMIN_TOKEN",
    default=None,
    help="Bearer token the AdminService requires; it also grants the DecisionService. Without it "
    "the AdminService refuses every call, unless --insecure-admin (env DECISION_ENGINE_ADMIN_TOKEN).",
)
@click.option(
    "--insecure-admin",
    is_flag=True,
    help="Open the AdminService (which can replace the catalog) to every client without a token; "
    "only on a trusted network. Logged as a warning at start.",
)
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM certificate chain."
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM private key."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Processes sharing the port (SO_REUSEPORT), forked before any server starts. Each worker has "
    "its OWN engine: on the embedded store learned state, contact history, pending decisions and "
    "metrics are per worker, so report an outcome on the connection that got the decision; on the "
    "Redis store every worker is one server of it (any takes any decision's outcome), metrics aside.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=DEFAULTS.threads,
    show_default=True,
    help="gRPC threads per worker for unary calls (streams get --max-streams threads more).",
)
@click.option(
    "--grace", type=float, default=10.0, show_default=True, help="Seconds calls in flight get on SIGTERM."
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=DEFAULTS.max_batch,
    show_default=True,
    help="Profiles per DecideBatch.",
)
@click.option(
    "--max-message-bytes",
    type=click.IntRange(min=1),
    default=DEFAULTS.max_message_bytes,
    show_default=True,
    help="Largest request or response (RESOURCE_EXHAUSTED past it).",
)
@click.option(
    "--max-concurrent-rpcs",
    type=click.IntRange(min=1),
    default=DEFAULTS.max_concurrent_rpcs,
    show_default=True,
    help="Calls running or queued per worker; more are refused at once (RESOURCE_EXHAUSTED).",
)
@click.option(
    "--max-streams",
    type=click.IntRange(min=1),
    default=DEFAULTS.max_streams,
    show_default=True,
    help="Streaming calls at once (ReportOutcomes, health Watch, reflection); more are refused "
    "(RESOURCE_EXHAUSTED).",
)
@click.option(
    "--stream-idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.stream_idle_seconds,
    show_default=True,
    help="Seconds a request stream may wait for its next message before it is cancelled.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=DEFAULTS.max_connections,
    show_default=True,
    help="Open connections per worker; more are closed on accept.",
)
@click.option(
    "--connection-idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.connection_idle_seconds,
    show_default=True,
    help="Seconds without a call before a connection is closed (GOAWAY).",
)
@click.option(
    "--connection-max-age",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.connection_age_seconds,
    show_default=True,
    help="Seconds before a connection is asked to reconnect (GOAWAY; calls in flight get "
    f"{DEFAULTS.connection_age_grace_seconds:g} s more).",
)
@click.option(
    "--metrics-token",
    envvar="DECISION_ENGINE_METRICS_TOKEN",
    default=None,
    help="Bearer token /metrics requires (env DECISION_ENGINE_METRICS_TOKEN).",
)
@click.option(
    "--metrics-tls", is_flag=True, help="Serve /metrics over TLS too, with --tls-cert and --tls-key."
)
@click.option("--seed", default=0, show_default=True, help="Engine seed (worker i uses SEED + i).")
@click.option(
    "--max-pending",
    type=click.IntRange(min=1),
    default=None,
    help="Decisions kept awaiting outcomes per worker, about 400 bytes each; the oldest go first "
    f"(default {int(_core.LIMITS['default_max_pending']):,}).",
)
@click.option(
    "--max-clock-skew",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds a request's own time may differ from this server's clock "
    f"(default {_core.LIMITS['default_max_clock_skew_seconds']:.0f}); past it the request is refused.",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Keep the whole state (profiles, contact history, caps, budgets, pending decisions, learning) "
    "in this Redis (redis://host:port/db) or Redis Cluster (redis+cluster://host:port,host:port,...), "
    "shared with every server on it; overrides the catalog's `store:` URL. Default: the catalog's "
    "store (embedded unless it says `type: redis`).",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def serve(
    catalog: Path,
    address: str,
    metrics_port: int,
    no_metrics: bool,
    decision_token: str | None,
    admin_token: str | None,
    insecure_admin: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    workers: int,
    threads: int,
    grace: float,
    max_batch: int,
    max_message_bytes: int,
    max_concurrent_rpcs: int,
    max_streams: int,
    stream_idle_timeout: float,
    max_connections: int,
    connection_idle_timeout: float,
    connection_max_age: float,
    metrics_token: str | None,
    metrics_tls: bool,
    seed: int,
    max_pending: int | None,
    max_clock_skew: float | None,
    store_url: str | None,
    log_level: str,
) -> None:
    """Serve decisions over gRPC until SIGTERM (calls in flight finish); SIGHUP reloads the catalog."""
    from decision_engine.server.interceptors import Tokens
    from decision_engine.server.logs import configure_logging
    from decision_engine.server.run import ServeOptions, split_address
    from decision_engine.server.run import serve as run_server
    from decision_engine.server.server import TlsConfig

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give both --tls-cert and --tls-key, or neither")
    if metrics_tls and tls_cert is None:
        raise click.UsageError("--metrics-tls needs --tls-cert and --tls-key")
    if insecure_admin and admin_token:
        raise click.UsageError(
            "--insecure-admin opens the AdminService without a token: drop it or --admin-token"
        )
    try:
        limits = Limits(
            threads=threads,
            max_batch=max_batch,
            max_message_bytes=max_message_bytes,
            max_concurrent_rpcs=max_concurrent_rpcs,
            max_streams=max_streams,
            stream_idle_seconds=stream_idle_timeout,
            max_connections=max_connections,
            connection_idle_seconds=connection_idle_timeout,
            connection_age_seconds=connection_max_age,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        split_address(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--address") from exc
    configure_logging(log_level)
    options = ServeOptions(
        catalog=catalog,
        address=address,
        metrics_port=None if no_metrics else metrics_port,
        tokens=Tokens(decision=decision_token or None, admin=admin_token or None),
        insecure_admin=insecure_admin,
        tls=TlsConfig.from_files(tls_cert, tls_key) if tls_cert and tls_key else None,
        metrics_token=metrics_token or None,
        metrics_tls=(tls_cert, tls_key) if metrics_tls and tls_cert and tls_key else None,
        workers=workers,
        grace=grace,
        limits=limits,
        seed=seed,
        max_pending=max_pending,
        max_clock_skew=max_clock_skew,
        store=store_url,
    )
    sys.exit(run_server(options))
