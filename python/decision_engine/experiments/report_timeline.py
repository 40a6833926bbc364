"""Every group at every look (the report's time bins): sums over its profiles, design effects,
rates and lift over time, and the mSPRT evaluated at each look."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from decision_engine.experiments.decision_table import Cumulative, DecisionTable
from decision_engine.experiments.report_model import LiftPoint, TimelinePoint
from decision_engine.experiments.sequential import ConfidenceSequence, msprt_difference_of_proportions
from decision_engine.experiments.stats import ProfileSums, design_effects, difference_of_proportions, rate

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GroupLooks:
    """One group, cumulative up to each look: conversion (0/1 per decision) and value, summed
    over its profiles, with their design effects."""

    conversion: ProfileSums
    value: ProfileSums
    conversion_deff: F64
    value_deff: F64


def _within_profile_cumsum(values: F64, first_of_profile: npt.NDArray[np.bool_]) -> F64:
    running = np.cumsum(values)
    before = (running - values)[first_of_profile]
    return np.asarray(running - before[np.cumsum(first_of_profile) - 1], dtype=np.float64)


def _sum_by(codes: npt.NDArray[np.int64], weights: F64 | None, size: int) -> F64:
    return np.asarray(np.bincount(codes, weights=weights, minlength=size), dtype=np.float64)


def _profile_sums(
    table: DecisionTable, index: npt.NDArray[np.int64], bins: int, selected: npt.NDArray[np.bool_]
) -> tuple[ProfileSums, ProfileSums]:
    """Per look, sums over profiles of functions of each profile's cumulative totals.

    A profile's cumulative (n, y) only changes in the bins where it made decisions, so the
    change of e.g. ``sum_i y_i^2`` in a bin is the sum over those cells of ``Y^2 - (Y - y)^2``.
    """
    cells, inverse = np.unique(table.profile[selected] * bins + index[selected], return_inverse=True)
    size = cells.size
    n = _sum_by(inverse, None, size)
    y = _sum_by(inverse, table.converted[selected].astype(np.float64), size)
    v = _sum_by(inverse, table.value[selected], size)
    owner, cell_bin = cells // bins, cells % bins
    first = np.r_[True, owner[1:] != owner[:-1]] if size else np.zeros(0, dtype=bool)
    big_n, big_y, big_v = (_within_profile_cumsum(a, first) for a in (n, y, v))

    def per_look(change: F64) -> F64:
        return np.cumsum(_sum_by(cell_bin, change, bins))

    decisions = per_look(n)
    decision_squares = per_look(big_n**2 - (big_n - n) ** 2)

    def sums(total: F64, metric_squares: F64, cell: F64) -> ProfileSums:
        return ProfileSums(
            decisions=decisions,
            total=per_look(cell),
            total_squares=per_look(total**2 - (total - cell) ** 2),
            cross=per_look(big_n * total - (big_n - n) * (total - cell)),
            decision_squares=decision_squares,
            metric_squares=metric_squares,
        )

    value_squares = np.cumsum(_sum_by(index[selected], table.value[selected] ** 2, bins))
    return sums(big_y, per_look(y), y), sums(big_v, value_squares, v)


def group_looks(table: DecisionTable, counts: Cumulative, order: list[str]) -> dict[str, GroupLooks]:
    """Every group at every look, with design effects from one intra-profile correlation per
    metric and look, pooled over the groups (see ``stats``)."""
    bins = len(counts.ends)
    sums = [
        _profile_sums(table, counts.index, bins, table.group == table.group_names.index(g)) for g in order
    ]
    conversion = design_effects([s[0] for s in sums], ddof=0)
    value = design_effects([s[1] for s in sums], ddof=1)
    return {
        g: GroupLooks(s[0], s[1], conversion[i], value[i])
        for i, (g, s) in enumerate(zip(order, sums, strict=True))
    }


def rate_timeline(counts: Cumulative, looks: dict[str, GroupLooks], alpha: float) -> list[TimelinePoint]:
    points = []
    for group, decisions in counts.decisions.items():
        conversions = counts.conversions[group]
        estimate = rate(conversions, decisions, alpha, deff=looks[group].conversion_deff)
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
    counts: Cumulative, looks: dict[str, GroupLooks], control: str, alpha: float, mixture_sd: float
) -> tuple[list[LiftPoint], dict[str, ConfidenceSequence]]:
    """Each group against control at the end of every bin: fixed-horizon interval (valid only
    for one look) and confidence sequence (valid at all looks at once). The bins are the looks."""
    n_c, x_c = counts.decisions[control], counts.conversions[control]
    deff_c = looks[control].conversion_deff
    points, sequences = [], {}
    for group, n_t in counts.decisions.items():
        if group == control:
            continue
        x_t, deff_t = counts.conversions[group], looks[group].conversion_deff
        sequences[group] = sequence = msprt_difference_of_proportions(
            x_t, n_t, x_c, n_c, mixture_sd=mixture_sd, alpha=alpha, deff_t=deff_t, deff_c=deff_c
        )
        fixed = difference_of_proportions(x_t, n_t, x_c, n_c, alpha, deff_t=deff_t, deff_c=deff_c)
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
