"""`decision-engine campaign`: decide one placement for every profile of a Parquet file.

The profiles stream through the engine a batch at a time on all cores (or through Ray Data
with ``--ray``) into a Parquet file of decisions, in bounded memory; ``--log`` also writes the
decision log that ``decision-engine evaluate`` reads (`decision_engine.batch.campaign`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from decision_engine.batch.campaign import BATCH_ROWS, run_campaign, run_ray_campaign
from decision_engine.errors import DecisionEngineError

errors = Console(stderr=True)


def _consents(texts: tuple[str, ...]) -> dict[str, str] | None:
    """``CHANNEL=COLUMN`` or ``CHANNEL`` (a bool column named as the channel)."""
    if not texts:
        return None
    pairs = [text.split("=", 1) if "=" in text else [text, text] for text in texts]
    return {channel: column for channel, column in pairs}


@click.command("campaign")
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--placement", required=True, help="The placement to decide for every profile.")
@click.option(
    "--profiles",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Parquet file of profiles: the id column and one column per catalog feature, by name.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Parquet file of decisions (with --ray: a directory of Parquet files).",
)
@click.option("--batch-rows", type=click.IntRange(min=1), default=BATCH_ROWS, show_default=True)
@click.option(
    "--policy-state",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="What the policies learned (a file of Engine.save_policy_state).",
)
@click.option(
    "--log",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the decision log (decisions.parquet, outcomes.parquet) to this directory.",
)
@click.option("--ray", "ray_address", default=None, help="Run on Ray Data: a cluster's address, or 'local'.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Ray actors (default: the cluster's CPUs)."
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--stream",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="This run's random stream: each profile draws from (seed, stream, profile id).",
)
@click.option(
    "--now",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    default=None,
    help="Decide as at this time (a simulated clock; default: the wall clock).",
)
@click.option("--id-column", default="profile_id", show_default=True)
@click.option(
    "--consent", "consents", multiple=True, help="CHANNEL=COLUMN (a bool column), or CHANNEL; repeatable."
)
def campaign(
    catalog: Path,
    placement: str,
    profiles: Path,
    out: Path,
    batch_rows: int,
    policy_state: Path | None,
    log: Path | None,
    ray_address: str | None,
    workers: int | None,
    seed: int,
    stream: int,
    now: datetime | None,
    id_column: str,
    consents: tuple[str, ...],
) -> None:
    """Decide PLACEMENT for every profile of a Parquet file into a Parquet file of decisions."""
    try:
        # what both ways of running the job take alike
        job: dict[str, Any] = {
            "batch_rows": batch_rows,
            "seed": seed,
            "stream": stream,
            "policy_state": policy_state,
            "log": log,
            "now": now,
            "id_column": id_column,
            "consents": _consents(consents),
        }
        if ray_address is not None:
            result = run_ray_campaign(
                ray_address, catalog, placement, profiles, out, concurrency=workers, **job
            )
        else:
            with _progress(placement) as advance:
                result = run_campaign(catalog, placement, profiles, out, progress=advance, **job)
    except (DecisionEngineError, OSError, ImportError) as exc:
        errors.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    loaded = (
        ""
        if result.policy_state_loaded is None
        else " (policy state: {} arms loaded, {} skipped)".format(*result.policy_state_loaded)
    )
    logged = "" if result.log is None else f"; decision log in {result.log}"
    click.echo(
        f"{result.rows:,} decisions in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s) "
        f"-> {result.out}{logged}{loaded}"
    )
    if result.budgets is not None and result.budget_used is not None:
        for offer, room in result.budgets.room.items():
            click.echo(
                f"budget {offer}: {result.budget_used[offer]:,} of {room:,} impressions "
                f"(price {result.budgets.prices[offer]:.4g}, "
                f"from {result.budgets.sampled_rows:,} sampled rows)"
            )


@contextmanager
def _progress(placement: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, and the callback that moves it."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors) as bar:
        task = bar.add_task(f"deciding {placement}", total=None, rate="")

        def advance(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{done / elapsed:,.0f} rows/s" if elapsed > 0 else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield advance
