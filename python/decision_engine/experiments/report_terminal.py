"""The experiment report as rich tables in the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from decision_engine.experiments import report_format as fmt
from decision_engine.experiments.report_model import ExperimentReport


def _shares(report: ExperimentReport) -> str:
    return "profiles " + ", ".join(
        f"{g.name} {fmt.share(g.observed_share, g.expected_share)}" for g in report.groups
    )


def group_table(report: ExperimentReport) -> Table:
    level = f"{1 - report.alpha:.0%}"
    period = f"{report.start[:10]} to {report.end[:10]}"
    mismatch = report.srm_p_value is not None and report.srm_p_value < fmt.SRM_THRESHOLD
    table = Table(
        title=f"Experiment {report.experiment}: {period}, {report.window} window",
        caption=f"sample ratio: {_shares(report)}: {fmt.srm_verdict(report.srm_p_value)}",
        caption_style="bold red" if mismatch else "",
    )
    table.add_column("group", no_wrap=True)
    for name in (
        "decisions",
        "conversions",
        f"rate\n[{level} CI]",
        "value /\ndecision",
        f"lift vs control\n[{level} CI]",
        "p-value",
        "always-\nvalid p",
        "P(beat\ncontrol)",
    ):
        table.add_column(name, justify="right", no_wrap=True)
    for g in report.groups:
        c = g.vs_control
        table.add_row(
            g.name + (" (control)" if g.is_control else ""),
            f"{g.decisions:,}",
            f"{g.conversions:,}",
            fmt.percent_interval(g.rate, g.rate_low, g.rate_high),
            f"{g.value_per_decision:,.3f}",
            fmt.percent_interval(c.relative_lift, c.relative_low, c.relative_high, signed=True) if c else "",
            fmt.p_value(c.p_value) if c else "",
            fmt.p_value(c.always_valid_p_value) if c else "",
            fmt.probability(c.probability_to_beat) if c else "",
        )
    return table


def print_report(report: ExperimentReport, console: Console) -> None:
    console.print(group_table(report))
    for g in report.groups:
        c = g.vs_control
        if c is None:
            continue
        rate = fmt.points_interval(c.difference, c.difference_low, c.difference_high)
        sequence = fmt.points_interval(c.difference, c.sequence_low, c.sequence_high)
        value = fmt.number_interval(c.value_difference, c.value_difference_low, c.value_difference_high)
        relative = fmt.percent(c.value_relative_lift, 1, signed=True)
        console.print(
            f"[bold]{g.name}[/] vs {report.control}: rate {rate}, confidence sequence {sequence}; "
            f"value / decision {value} ({relative}, Welch p {fmt.p_value(c.value_p_value)})",
            highlight=False,
        )
    console.print(
        f"{report.decisions:,} decisions, {report.outcomes_attributed:,} outcomes attributed; "
        f"looks every {report.bin}",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
