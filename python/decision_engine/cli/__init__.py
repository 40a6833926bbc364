"""`decision-engine`: validate catalogs, run the demo, serve decisions over gRPC, decide batch
campaigns, load profiles, evaluate policies off-line and report experiments. One module per
command."""

from __future__ import annotations

import click

from decision_engine.cli import campaign, demo, evaluate, load, report, serve, validate

__all__ = ["main"]


@click.group()
@click.version_option(package_name="decision-engine")
def main() -> None:
    """Real-time next-best-offer decision engine."""


for _command in (
    validate.validate,
    demo.demo,
    serve.serve,
    report.report,
    evaluate.evaluate,
    campaign.campaign,
    load.load,
):
    main.add_command(_command)
