"""`decision-engine`: validate catalogs, run the demo, serve decisions over gRPC."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from decision_engine.catalog import load_catalog
from decision_engine.engine import Engine
from decision_engine.errors import CatalogError

console = Console()
errors = Console(stderr=True)


def _demo_catalog() -> Path:
    from seeds.generator import DEMO_CATALOG

    return DEMO_CATALOG


@click.group()
@click.version_option(package_name="decision-engine")
def main() -> None:
    """Real-time next-best-offer decision engine."""


@main.command()
@click.argument("catalog", type=click.Path(dir_okay=False, path_type=Path))
def validate(catalog: Path) -> None:
    """Check CATALOG (YAML): print every error with file:line:column, or a summary."""
    try:
        engine = Engine(load_catalog(catalog))
    except CatalogError as exc:
        errors.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    model = engine.catalog.model
    rules = sum(1 for o in model.offers if o.rule)
    table = Table(title=f"{catalog}: valid")
    for column in ("placement", "channel", "slots", "policy", "offers"):
        table.add_column(column)
    for pid, (channel, slots, offers) in engine.placements.items():
        policy = next(p.policy for p in model.placements if p.id == pid)
        table.add_row(pid, channel, str(slots), policy.type, str(len(offers)))
    console.print(table)
    console.print(
        f"{len(model.features)} features, {len(model.channels)} channels, "
        f"{len(model.offers)} offers ({rules} with rules)"
    )


@main.command()
@click.option("--decisions", default=200_000, show_default=True, help="Customer arrivals to simulate.")
@click.option("--customers", default=20_000, show_default=True, help="Distinct simulated customers.")
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Catalog to use (default: the demo catalog in seeds/).",
)
@click.option(
    "--holdout",
    type=click.FloatRange(0.0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of customers in a universal holdout (non-personalized default); with it the "
    "demo logs every decision and ends with the experiment report.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-log"),
    show_default=True,
    help="Where the decision and outcome logs go (with --holdout).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the experiment report as HTML (with --holdout).",
)
def demo(
    decisions: int,
    customers: int,
    seed: int,
    catalog: Path | None,
    holdout: float,
    log_dir: Path,
    html_path: Path | None,
) -> None:
    """Simulate customers with a known response model; compare the learned policy with baselines."""
    from contextlib import nullcontext

    from decision_engine.demo import HOLDOUT_ID, run_demo, with_holdout

    catalog = catalog or _demo_catalog()
    console.print(f"catalog {catalog}, {decisions:,} decisions over {customers:,} customers, seed {seed}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    log_context = nullcontext(None)
    if holdout > 0:
        from decision_engine.decision_log import DecisionLog

        log_context = DecisionLog(log_dir, [with_holdout(catalog, holdout)[1]])  # type: ignore[assignment]
    with Progress(*columns, console=console) as bar, log_context as log:
        task = bar.add_task("deciding", total=decisions)

        def advance(steps: int, click_rate: float) -> None:
            bar.update(task, advance=steps, description=f"deciding (click rate {click_rate:.2%})")

        result = run_demo(catalog, decisions, seed, customers, progress=advance, log=log, holdout=holdout)

    table = Table(title="Policies on the same simulated customers")
    table.add_column("policy")
    table.add_column("click rate", justify="right")
    table.add_column("value / decision", justify="right")
    table.add_column("vs random (value)", justify="right")
    random_value = next(r.value_per_decision for r in result.results if r.name == "uniform random")
    for r in result.results:
        table.add_row(
            r.name,
            f"{r.click_rate:.2%}",
            f"{r.value_per_decision:.3f}",
            f"{r.value_per_decision / random_value:.2f}x",
        )
    console.print(table)
    per_second = result.decisions / result.decide_seconds
    console.print(
        f"engine time {result.decide_seconds:.2f} s for {result.decisions:,} decisions with outcomes "
        f"({per_second:,.0f} decide+report/s from Python, one thread); "
        f"decide_batch: {result.batch_decisions_per_second:,.0f} decisions/s"
    )
    if holdout > 0:
        _holdout_report(log_dir, HOLDOUT_ID, html_path)


def _holdout_report(log_dir: Path, experiment: str, html_path: Path | None) -> None:
    from datetime import timedelta

    from decision_engine.experiments.report import load_reports
    from decision_engine.experiments.report_terminal import print_report

    reports = load_reports(
        log_dir / "decisions.parquet",
        log_dir / "outcomes.parquet",
        experiment=experiment,
        window=timedelta(days=1),
        window_label="1d",
    )
    for report in reports:
        print_report(report, console)
    console.print(
        f"logs in {log_dir}/; `decision-engine report {log_dir}/decisions.parquet "
        f"{log_dir}/outcomes.parquet --html report.html` renders them again"
    )
    if html_path is not None:
        from decision_engine.experiments.report_html import render_html

        html_path.write_text(render_html(reports), encoding="utf-8")
        console.print(f"wrote {html_path}")


@main.command()
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


def _register_report() -> None:
    from decision_engine.evaluate_cli import evaluate
    from decision_engine.report_cli import report

    main.add_command(report)
    main.add_command(evaluate)


_register_report()
