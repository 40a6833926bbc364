"""Rates and lift over time for the report's plots, and the mSPRT evaluated at every bin."""

from __future__ import annotations

import numpy as np

from decision_engine.experiments.decision_table import Cumulative
from decision_engine.experiments.report_model import LiftPoint, TimelinePoint
from decision_engine.experiments.sequential import ConfidenceSequence, msprt_difference_of_proportions
from decision_engine.experiments.stats import difference_of_proportions, rate


def rate_timeline(counts: Cumulative, alpha: float) -> list[TimelinePoint]:
    points = []
    for group, decisions in counts.decisions.items():
        conversions = counts.conversions[group]
        estimate = rate(conversions, decisions, alpha)
        for k, end in enumerate(counts.ends):
            if decisions[k] == 0:
                continue
            points.append(
                TimelinePoint(
                    time=end,
                    group=group,
                    decisions=int(decisions[k]),
                    conversions=int(conversions[k]),
                    rate=float(estimate.value[k]),
                    rate_low=float(estimate.low[k]),
                    rate_high=float(estimate.high[k]),
                )
            )
    return points


def lift_timeline(
    counts: Cumulative, control: str, alpha: float, mixture_sd: float
) -> tuple[list[LiftPoint], dict[str, ConfidenceSequence]]:
    """Each group against control at the end of every bin: fixed-horizon interval (valid only
    for one look) and confidence sequence (valid at all looks at once). The bins are the looks."""
    n_c, x_c = counts.decisions[control], counts.conversions[control]
    points, sequences = [], {}
    for group, n_t in counts.decisions.items():
        if group == control:
            continue
        x_t = counts.conversions[group]
        sequences[group] = sequence = msprt_difference_of_proportions(
            x_t, n_t, x_c, n_c, mixture_sd=mixture_sd, alpha=alpha
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            fixed = difference_of_proportions(x_t, n_t, x_c, n_c, alpha)
        for k, end in enumerate(counts.ends):
            if n_t[k] == 0 or n_c[k] == 0:
                continue
            points.append(
                LiftPoint(
                    time=end,
                    group=group,
                    difference=float(fixed.value[k]),
                    difference_low=float(fixed.low[k]),
                    difference_high=float(fixed.high[k]),
                    sequence_low=float(sequence.low[k]),
                    sequence_high=float(sequence.high[k]),
                    always_valid_p_value=float(sequence.p_value[k]),
                )
            )
    return points, sequences
