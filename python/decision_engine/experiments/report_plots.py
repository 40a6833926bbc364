"""The report's figures, drawn with matplotlib (no pyplot, no GUI backend) as inline SVG."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from matplotlib.typing import RcKeyType

from decision_engine.experiments.report_model import ExperimentReport

CONTROL_COLOR = "#6b7280"
COLORS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777"]
STYLE: dict[RcKeyType, Any] = {
    "font.size": 10.5,
    "svg.fonttype": "none",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
WIDTH = 11.0  # inches: the page width at 96 dpi, so text in the plots matches the page
# The y range follows the intervals from this fraction of the period on; the first looks,
# with few decisions, have intervals wide enough to flatten everything else.
FOCUS_FROM = 0.2


def _colors(report: ExperimentReport) -> dict[str, str]:
    others = [g.name for g in report.groups if not g.is_control]
    return {report.control: CONTROL_COLOR} | {g: COLORS[i % len(COLORS)] for i, g in enumerate(others)}


def _render(height: float, draw: Callable[[Axes], None]) -> str:
    with rc_context(STYLE):
        # Every figure has the same width, labels inside it, so all plots share one scale.
        figure = Figure(figsize=(WIDTH, height), layout="constrained")
        draw(figure.subplots())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    # Inline SVG: drop the XML prologue; the page scales it down if it is narrower.
    text = buffer.getvalue()
    return text[text.index("<svg") :].replace("<svg ", '<svg class="plot" ', 1)


def _time_axis(axes: Axes, title: str) -> None:
    locator = mdates.AutoDateLocator(maxticks=10)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.grid(alpha=0.3)
    axes.set_title(title, loc="left", fontsize=12, pad=24)
    entries = len(axes.get_legend_handles_labels()[1])
    axes.legend(
        frameon=False,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=max(entries, 1),
        fontsize=9.5,
        borderaxespad=0.2,
    )


Band = tuple[datetime, float, float]


def _axis_times(stamps: Sequence[str]) -> npt.NDArray[np.datetime64]:
    """ISO times in UTC as naive datetime64, which matplotlib plots as UTC."""
    return np.array([datetime.fromisoformat(s).replace(tzinfo=None) for s in stamps], dtype="datetime64[s]")


def _focus(axes: Axes, bands: Sequence[Band], *, zero: bool) -> None:
    """Sets the y range to the intervals after the first FOCUS_FROM of the period (and 0 if asked)."""
    if not bands:
        return
    first, last = min(t for t, _, _ in bands), max(t for t, _, _ in bands)
    cut = first + (last - first) * FOCUS_FROM
    kept = [(lo, hi) for t, lo, hi in bands if t >= cut]
    bottom, top = min(lo for lo, _ in kept), max(hi for _, hi in kept)
    if zero:
        bottom, top = min(bottom, 0.0), max(top, 0.0)
    margin = 0.15 * (top - bottom) or abs(top) * 0.1 or 0.01
    axes.set_ylim(bottom - margin, top + margin)


def rate_over_time(report: ExperimentReport) -> str:
    """Cumulative conversion rate per group with its confidence interval, bin by bin."""
    return _render(3.4, lambda axes: _draw_rates(axes, report))


def _draw_rates(axes: Axes, report: ExperimentReport) -> None:
    colors = _colors(report)
    level = f"{1 - report.alpha:.0%}"
    bands: list[Band] = []
    for g in report.groups:
        points = [p for p in report.timeline if p.group == g.name]
        stamps = [datetime.fromisoformat(p.time) for p in points]
        when = _axis_times([p.time for p in points])
        low, high = [p.rate_low for p in points], [p.rate_high for p in points]
        color = colors[g.name]
        label = g.name + (" (control)" if g.is_control else "")
        axes.fill_between(when, low, high, color=color, alpha=0.18, linewidth=0)
        axes.plot(when, [p.rate for p in points], color=color, linewidth=1.8, label=label)
        bands.extend(zip(stamps, low, high, strict=True))
    _focus(axes, bands, zero=False)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel("cumulative conversion rate")
    _time_axis(axes, f"Conversion rate by decision time (cumulative; shaded: {level} intervals)")


def lift_over_time(report: ExperimentReport) -> str:
    """Cumulative difference to control: fixed-horizon interval and confidence sequence."""
    return _render(3.4, lambda axes: _draw_lift(axes, report))


def _draw_lift(axes: Axes, report: ExperimentReport) -> None:
    colors = _colors(report)
    level = f"{1 - report.alpha:.0%}"
    bands: list[Band] = []
    for g in report.groups:
        points = [p for p in report.lift_timeline if p.group == g.name]
        if not points:
            continue
        stamps = [datetime.fromisoformat(p.time) for p in points]
        times = _axis_times([p.time for p in points])
        color = colors[g.name]
        axes.fill_between(
            times,
            [p.sequence_low for p in points],
            [p.sequence_high for p in points],
            color=color,
            alpha=0.15,
            linewidth=0,
            label=f"{level} confidence sequence (valid at every look)",
        )
        axes.plot(
            times,
            [p.difference_low for p in points],
            color=color,
            linestyle="--",
            linewidth=0.9,
            label=f"{level} fixed-horizon interval (one look only)",
        )
        axes.plot(times, [p.difference_high for p in points], color=color, linestyle="--", linewidth=0.9)
        axes.plot(
            times,
            [p.difference for p in points],
            color=color,
            linewidth=1.8,
            label=f"{g.name} - {report.control}",
        )
        bands.extend((t, p.sequence_low, p.sequence_high) for t, p in zip(stamps, points, strict=True))
    _focus(axes, bands, zero=True)
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=2, symbol=" pp"))
    axes.set_ylabel("rate difference vs control")
    _time_axis(axes, "Cumulative lift over time (difference in conversion rate, percentage points)")


def offer_bars(report: ExperimentReport) -> str:
    """Conversion rate per offer and group, with intervals, best first within each group."""
    return _render(0.9 + 0.3 * len(report.offers), lambda axes: _draw_offers(axes, report))


def _draw_offers(axes: Axes, report: ExperimentReport) -> None:
    offers = report.offers
    colors = _colors(report)
    rows = list(range(len(offers)))[::-1]
    axes.barh(
        rows,
        [o.rate for o in offers],
        color=[colors.get(o.group, CONTROL_COLOR) for o in offers],
        xerr=[
            [max(o.rate - o.rate_low, 0.0) for o in offers],
            [max(o.rate_high - o.rate, 0.0) for o in offers],
        ],
        error_kw={"ecolor": "#111827", "capsize": 3, "linewidth": 0.9},
        height=0.65,
    )
    axes.set_yticks(rows, [f"{o.offer_id} ({o.group}, {o.impressions:,} shown)" for o in offers])
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(f"conversion rate per impression, {1 - report.alpha:.0%} intervals")
    axes.set_title("Results per offer", loc="left", fontsize=12)
    axes.grid(axis="x", alpha=0.3)
