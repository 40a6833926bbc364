"""`decision-engine`: validate catalogs, run the demo."""

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
def demo(decisions: int, customers: int, seed: int, catalog: Path | None) -> None:
    """Simulate customers with a known response model; compare the learned policy with baselines."""
    from decision_engine.demo import run_demo

    catalog = catalog or _demo_catalog()
    console.print(f"catalog {catalog}, {decisions:,} decisions over {customers:,} customers, seed {seed}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("deciding", total=decisions)

        def advance(steps: int, click_rate: float) -> None:
            bar.update(task, advance=steps, description=f"deciding (click rate {click_rate:.2%})")

        result = run_demo(catalog, decisions, seed, customers, progress=advance)

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
