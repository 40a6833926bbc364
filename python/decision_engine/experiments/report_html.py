"""The experiment report as one self-contained HTML page (inline SVG plots, no scripts), from the
jinja2 template ``report.html.j2`` beside this module."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import jinja2

from decision_engine.experiments import report_format
from decision_engine.experiments.report_model import ExperimentReport
from decision_engine.experiments.report_plots import lift_over_time, offer_bars, rate_over_time

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("decision_engine.experiments", ""),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def render_html(reports: Sequence[ExperimentReport], generated: datetime | None = None) -> str:
    plots = [
        {"rates": rate_over_time(r), "lift": lift_over_time(r), "offers": offer_bars(r)} for r in reports
    ]
    moment = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
    return _ENVIRONMENT.get_template("report.html.j2").render(
        reports=reports,
        plots=plots,
        generated=moment,
        fmt=report_format,
        srm_threshold=report_format.SRM_THRESHOLD,
    )
