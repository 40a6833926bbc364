"""`decision-engine serve`: decisions over gRPC until SIGTERM; SIGHUP reloads the catalog."""

from __future__ import annotations

import sys
from pathlib import Path

import click


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
    help="Bearer token the AdminService requires; it also grants the DecisionService. With only "
    "--decision-token, the AdminService is closed (env DECISION_ENGINE_ADMIN_TOKEN).",
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
    "its OWN engine: learned state, contact history, pending decisions and metrics are per worker "
    "(shared state comes with the Redis store), so report an outcome on the connection that got the "
    "decision.",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=16, show_default=True, help="gRPC threads per worker."
)
@click.option(
    "--grace", type=float, default=10.0, show_default=True, help="Seconds calls in flight get on SIGTERM."
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Profiles per DecideBatch.",
)
@click.option("--seed", default=0, show_default=True, help="Engine seed (worker i uses SEED + i).")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Share contact history, caps, budgets, pending decisions and learning with every server on "
    "this Redis (redis://host:port/db); overrides the catalog's `store:` URL. Default: the catalog's "
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
    tls_cert: Path | None,
    tls_key: Path | None,
    workers: int,
    threads: int,
    grace: float,
    max_batch: int,
    seed: int,
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
        tls=TlsConfig.from_files(tls_cert, tls_key) if tls_cert and tls_key else None,
        workers=workers,
        threads=threads,
        grace=grace,
        max_batch=max_batch,
        seed=seed,
        store=store_url,
    )
    sys.exit(run_server(options))
