"""`decision-engine validate`: every catalog error with file:line:column, or a summary."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from decision_engine.catalog import load_catalog
from decision_engine.engine import Engine
from decision_engine.errors import CatalogError

console = Console()
errors = Console(stderr=True)


@click.command()
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
