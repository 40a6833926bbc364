"""The experiment report as rich tables in the terminal, readable at 80 columns.

The headline has a row per group and metric (conversion, value per decision), each estimate
with its interval on a second line, so the table stays narrow enough for an 80-column terminal
without cutting a cell; the verdict under it says what the two tests say together.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from decision_engine.experiments import report_format as fmt
from decision_engine.experiments.report_model import ExperimentReport, GroupResult


def _shares(report: ExperimentReport) -> str:
    return "profiles " + ", ".join(
        f"{g.name} {fmt.share(g.observed_share, g.expected_share)}" for g in report.groups
    )


def _lines(pair: tuple[str, str]) -> str:
    return "\n".join(part for part in pair if part)


def _rows(g: GroupResult) -> tuple[list[str], list[str]]:
    c = g.vs_control
    rate = fmt.percent_pair(g.rate, g.rate_low, g.rate_high)
    value = fmt.number(g.value_per_decision, g.value_per_decision_low, g.value_per_decision_high)
    if c is None:
        return ["  conversion", _lines(rate), "", "", ""], ["  value", _lines(value), "", "", ""]
    lift = fmt.percent_pair(c.relative_lift, c.relative_low, c.relative_high, signed=True)
    value_lift = fmt.percent_pair(c.value_relative_lift, c.value_relative_low, c.value_relative_high, True)
    conversion = [
        "  conversion",
        _lines(rate),
        _lines(lift),
        fmt.p_value(c.p_value_adjusted),
        fmt.p_value(c.always_valid_p_value_adjusted),
    ]
    value_row = ["  value", _lines(value), _lines(value_lift), fmt.p_value(c.value_p_value_adjusted), ""]
    return conversion, value_row


def group_table(report: ExperimentReport) -> Table:
    level = f"{1 - report.alpha:.0%}"
    period = f"{report.start[:10]} to {report.end[:10]}"
    mismatch = report.srm_p_value is not None and report.srm_p_value < fmt.SRM_THRESHOLD
    holm = report.comparisons_read_together > 1
    table = Table(
        title=f"Experiment {report.experiment}: {period}, {report.window} window",
        caption=f"sample ratio: {_shares(report)}: {fmt.srm_verdict(report.srm_p_value)}",
        caption_style="bold red" if mismatch else "",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("group\n  metric", no_wrap=True)
    for name in (
        f"per decision\n[{level} CI]",
        f"lift vs control\n[{level} CI]",
        "p (Holm)" if holm else "p-value",
        "always-\nvalid p",
    ):
        table.add_column(name, justify="right", no_wrap=True)
    for g in report.groups:
        conversion, value = _rows(g)
        control = g.is_control and g.name != "control"
        table.add_row(g.name + (" (control)" if control else ""), style="bold")
        table.add_row(*conversion)
        table.add_row(*value, end_section=g is not report.groups[-1])
    return table


def print_report(report: ExperimentReport, console: Console) -> None:
    console.print(group_table(report))
    for g in report.groups:
        c = g.vs_control
        if c is None:
            continue
        console.print(
            f"[bold]{g.name} vs {report.control}: {fmt.verdict(c, report.alpha)}[/] "
            f"({fmt.verdict_details(c, report.alpha)})",
            highlight=False,
        )
        rate = fmt.points_interval(c.difference, c.difference_low, c.difference_high)
        sequence = fmt.points_interval(c.difference, c.sequence_low, c.sequence_high)
        value = fmt.number_interval(c.value_difference, c.value_difference_low, c.value_difference_high)
        console.print(
            f"  conversion {rate}, confidence sequence {sequence}, P(beat control) "
            f"{fmt.probability(c.probability_to_beat)}; value / decision {value}",
            highlight=False,
        )
    effects = ", ".join(f"{g.name} {g.design_effect:.2f}" for g in report.groups)
    console.print(
        f"{report.decisions:,} decisions, {report.outcomes_attributed:,} outcomes attributed; "
        f"looks every {report.bin}; design effect of profiles (conversion) {effects}",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
