"""`decision-engine report`: experiment results from a decision log and an outcome log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from decision_engine.errors import InvalidInputError

console = Console()
errors = Console(stderr=True)


@click.command("report")
@click.argument("decisions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("outcomes", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--experiment", default=None, help="Experiment id (default: every experiment in the log).")
@click.option(
    "--window", default="7d", show_default=True, help="Attribution window after a decision: 7d, 12h, 1d12h."
)
@click.option(
    "--control", default=None, help="Control group (default: the configured one, else control/holdout)."
)
@click.option(
    "--alpha", default=0.05, show_default=True, type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True)
)
@click.option(
    "--mixture-sd",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="mSPRT mixture sd, in rate units (default: 0.2 x the overall conversion rate).",
)
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report."
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the numbers as JSON."
)
def report(
    decisions: Path,
    outcomes: Path,
    experiment: str | None,
    window: str,
    control: str | None,
    alpha: float,
    mixture_sd: float | None,
    html_path: Path | None,
    json_path: Path | None,
) -> None:
    """Rate, lift, intervals and tests per experiment group from DECISIONS and OUTCOMES (Parquet)."""
    import pyarrow as pa

    from decision_engine.decision_log.format import parse_duration
    from decision_engine.experiments.report import load_reports
    from decision_engine.experiments.report_terminal import print_report

    try:
        reports = load_reports(
            decisions,
            outcomes,
            experiment=experiment,
            window=parse_duration(window),
            window_label=window,
            control=control,
            alpha=alpha,
            mixture_sd=mixture_sd,
        )
    except (InvalidInputError, pa.ArrowException) as exc:
        errors.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    if not reports:
        errors.print(f"error: no experiment in {decisions}", style="red", markup=False, highlight=False)
        sys.exit(1)
    if not console.is_terminal:  # piped or redirected: do not squeeze the table into 80 columns
        console.width = max(console.width, 150)
    for result in reports:
        print_report(result, console)
    if json_path is not None:
        document = {
            "format": "decision-engine-experiment-report/1",
            "reports": [r.to_dict() for r in reports],
        }
        json_path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        console.print(f"wrote {json_path}", highlight=False)
    if html_path is not None:
        from decision_engine.experiments.report_html import render_html

        html_path.write_text(render_html(reports), encoding="utf-8")
        console.print(f"wrote {html_path}", highlight=False)
