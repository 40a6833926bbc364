"""Builds experiment reports from a decision log and an outcome log.

The metrics are per decision: a decision converts when any of its offers gets an outcome
with a positive reward within the attribution window; its value is the sum of those outcomes'
values. Inference is at the unit of assignment, the profile: every interval and test carries
the design effect of the group's profiles (``stats``), and sample ratios are checked on
distinct profiles. Value per decision (what arbitration maximises) is reported beside
conversion, with its own interval, lift and test. When several comparisons are read together
(several groups, or several experiments in one run) their p-values are Holm-adjusted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decision_engine.decision_log.format import join_outcomes, read_decisions, read_experiments, read_outcomes
from decision_engine.errors import InvalidInputError
from decision_engine.experiments.assignment import Experiment
from decision_engine.experiments.decision_table import cumulative_counts, iso, per_decision
from decision_engine.experiments.report_model import Comparison, ExperimentReport, GroupResult, OfferResult
from decision_engine.experiments.report_timeline import GroupLooks, group_looks, lift_timeline, rate_timeline
from decision_engine.experiments.sequential import ConfidenceSequence, default_mixture_sd
from decision_engine.experiments.stats import (
    difference_of_proportions,
    holm,
    mean_interval,
    probability_to_beat,
    rate,
    relative_lift,
    relative_lift_of_means,
    sample_ratio_mismatch,
    two_proportion_z_test,
    welch_t_test,
)


def _order_groups(seen: list[str], config: Experiment | None, control: str | None) -> tuple[list[str], str]:
    """Control first, then the configured order, then groups the configuration does not know."""
    configured = [name for name, _ in config.groups] if config else []
    ordered = [g for g in configured if g in seen] + sorted(g for g in seen if g not in configured)
    if control is None:
        fallback = next((g for g in ("control", "holdout") if g in ordered), ordered[0])
        control = config.control if config and config.control in ordered else fallback
    if control not in ordered:
        raise InvalidInputError(f"control group '{control}' has no decisions (groups: {', '.join(ordered)})")
    return [control, *[g for g in ordered if g != control]], control


def build_report(
    decisions: pa.Table,
    outcomes: pa.Table,
    experiment: str,
    *,
    window: timedelta = timedelta(days=7),
    window_label: str | None = None,
    config: Experiment | None = None,
    control: str | None = None,
    alpha: float = 0.05,
    mixture_sd: float | None = None,
) -> ExperimentReport:
    """The report of one experiment. ``config`` supplies the shares for the sample-ratio check."""
    rows = decisions.filter(pc.equal(decisions["experiment"], pa.scalar(experiment)))
    if rows.num_rows == 0:
        raise InvalidInputError(f"no decisions for experiment '{experiment}'")
    joined = join_outcomes(rows, outcomes, window)
    table = per_decision(joined)
    order, control = _order_groups(table.group_names, config, control)
    masks = {name: table.group == table.group_names.index(name) for name in order}
    n = {g: int(m.sum()) for g, m in masks.items()}
    x = {g: int(table.converted[m].sum()) for g, m in masks.items()}
    label = window_label or str(window)
    notes: list[str] = []
    if mixture_sd is None:
        mixture_sd = default_mixture_sd(sum(x.values()) / sum(n.values()))
        notes.append(
            f"mSPRT mixture sd {mixture_sd:.3g} = 0.2 x the overall conversion rate in this log; fix it "
            "before the experiment starts (--mixture-sd) for strict always-valid guarantees"
        )
    counts = cumulative_counts(table, order)
    looks = group_looks(table, counts, order)
    lifts, sequences = lift_timeline(counts, looks, control, alpha, mixture_sd)

    profiles = {g: int(np.unique(table.profile[m]).size) for g, m in masks.items()}
    expected = config.shares if config else {}
    srm, srm_notes = _sample_ratio(profiles, expected)
    notes.extend(srm_notes)
    crossing = sum(profiles.values()) - int(np.unique(table.profile).size)
    if crossing:
        notes.append(f"{crossing} profiles have decisions in more than one group: check the assignment")
    empty = [g for g in order if x[g] == 0]
    if empty and len(order) > 1:
        notes.append(
            f"no conversions in {', '.join(empty)}: conversion lift adds 0.5 to the conversions and "
            "decisions of both groups (continuity correction)"
        )

    groups = []
    for g in order:
        final = _final(looks[g])
        estimate = rate(x[g], n[g], alpha, deff=final.conversion_deff)
        value = mean_interval(final.value.mean, final.value.variance(ddof=1), n[g], alpha, final.value_deff)
        comparison = None
        if g != control:
            comparison = _compare(final, _final(looks[control]), sequences[g], alpha)
        groups.append(
            GroupResult(
                name=g,
                is_control=g == control,
                profiles=profiles[g],
                decisions=n[g],
                conversions=x[g],
                rate=float(estimate.value),
                rate_low=float(estimate.low),
                rate_high=float(estimate.high),
                value=float(table.value[masks[g]].sum()),
                value_per_decision=float(value.value),
                value_per_decision_low=float(value.low),
                value_per_decision_high=float(value.high),
                design_effect=float(final.conversion_deff),
                observed_share=profiles[g] / sum(profiles.values()),
                expected_share=expected.get(g),
                vs_control=comparison,
            )
        )
    start, end = int(table.time.min()), int(table.time.max())
    notes.extend(_censoring_note(outcomes, start, end, window, label))
    report = ExperimentReport(
        experiment=experiment,
        control=control,
        window=label,
        alpha=alpha,
        mixture_sd=mixture_sd,
        start=iso(start),
        end=iso(end),
        bin=counts.bin_label,
        decisions=sum(n.values()),
        outcomes_attributed=int(pc.sum(joined["outcomes"]).as_py() or 0),
        srm_p_value=srm,
        groups=groups,
        timeline=rate_timeline(counts, looks, alpha),
        lift_timeline=lifts,
        offers=offer_results(joined, order, alpha),
        notes=notes,
    )
    (adjusted,) = adjust_for_multiple_comparisons([report])
    return adjusted


def adjust_for_multiple_comparisons(reports: Sequence[ExperimentReport]) -> list[ExperimentReport]:
    """Holm-adjusts the p-values of every comparison in ``reports`` as one family (one family
    per test: conversion z, always-valid, value Welch), from the raw p-values, and notes it."""
    pairs = [(i, j) for i, r in enumerate(reports) for j, g in enumerate(r.groups) if g.vs_control]
    raw = [_comparison(reports, i, j) for i, j in pairs]
    fixed = holm([c.p_value for c in raw])
    valid = holm([c.always_valid_p_value for c in raw])
    value = holm([c.value_p_value for c in raw])
    out = [dataclasses.replace(r, groups=list(r.groups), notes=list(r.notes)) for r in reports]
    for k, (i, j) in enumerate(pairs):
        group = out[i].groups[j]
        adjusted = dataclasses.replace(
            raw[k],
            p_value_adjusted=float(fixed[k]),
            always_valid_p_value_adjusted=float(valid[k]),
            value_p_value_adjusted=float(value[k]),
        )
        out[i].groups[j] = dataclasses.replace(group, vs_control=adjusted)
    for r in out:
        r.notes[:] = [note for note in r.notes if not note.startswith(_FAMILY_NOTE)]
        if len(pairs) > 1:
            r.notes.append(
                f"{_FAMILY_NOTE}{len(pairs)} comparisons are read together: the p-values shown are "
                "Holm-adjusted over them (family-wise error at alpha); the JSON keeps the raw ones too"
            )
    return [dataclasses.replace(r, comparisons_read_together=max(len(pairs), 1)) for r in out]


_FAMILY_NOTE = "multiple comparisons: "


def _comparison(reports: Sequence[ExperimentReport], i: int, j: int) -> Comparison:
    comparison = reports[i].groups[j].vs_control
    assert comparison is not None
    return comparison


def _final(looks: GroupLooks) -> GroupLooks:
    """The last look: the whole log."""
    return GroupLooks(
        looks.conversion.look(-1),
        looks.value.look(-1),
        np.asarray(looks.conversion_deff[-1]),
        np.asarray(looks.value_deff[-1]),
    )


def _sample_ratio(profiles: dict[str, int], shares: dict[str, float]) -> tuple[float | None, list[str]]:
    """SRM p-value over every configured group, including groups with no decisions at all and
    groups configured at 0% share (any traffic there is a mismatch)."""
    if not shares or not set(profiles) <= set(shares):
        return None, ["the log carries no configured shares for every group: sample ratio not checked"]
    notes = [
        f"configured group '{g}' has no decisions"
        for g, share in shares.items()
        if share > 0 and g not in profiles
    ]
    notes += [
        f"group '{g}' is configured at 0% share but has {profiles[g]:,} profiles: check the assignment"
        for g, share in shares.items()
        if share == 0 and profiles.get(g, 0) > 0
    ]
    groups = list(shares)
    return sample_ratio_mismatch([profiles.get(g, 0) for g in groups], [shares[g] for g in groups]), notes


def _censoring_note(outcomes: pa.Table, start: int, end: int, window: timedelta, label: str) -> list[str]:
    last_outcome = pc.max(outcomes["time"]).as_py() if outcomes.num_rows else None
    last_seen = max(end, int(last_outcome.timestamp() * 1e6)) if last_outcome else end
    complete_until = last_seen - int(window.total_seconds() * 1e6)
    if complete_until >= end:
        return []
    if complete_until < start:
        return [
            f"no decision has had the whole {label} window yet (the logs end {iso(last_seen)}); "
            "both groups are cut alike, so lift is unbiased"
        ]
    return [
        f"decisions after {iso(complete_until)} have had less than the {label} window "
        f"(the logs end {iso(last_seen)}); both groups are cut alike, so lift is unbiased"
    ]


def _compare(
    treatment: GroupLooks, control: GroupLooks, sequence: ConfidenceSequence, alpha: float
) -> Comparison:
    t, c = treatment.conversion, control.conversion
    x_t, n_t, x_c, n_c = t.total, t.decisions, c.total, c.decisions
    deffs = {"deff_t": treatment.conversion_deff, "deff_c": control.conversion_deff}
    difference = difference_of_proportions(x_t, n_t, x_c, n_c, alpha, **deffs)
    relative = relative_lift(x_t, n_t, x_c, n_c, alpha, **deffs)
    _, p_value = two_proportion_z_test(x_t, n_t, x_c, n_c, **deffs)
    eff_t, eff_c = float(n_t / treatment.conversion_deff), float(n_c / control.conversion_deff)
    beat = probability_to_beat(
        float(x_t / treatment.conversion_deff), eff_t, float(x_c / control.conversion_deff), eff_c
    )
    vt, vc = treatment.value, control.value
    var_t, var_c = vt.variance(ddof=1), vc.variance(ddof=1)
    value_deffs = {"deff_t": treatment.value_deff, "deff_c": control.value_deff}
    welch = welch_t_test(vt.mean, np.sqrt(var_t), n_t, vc.mean, np.sqrt(var_c), n_c, alpha, **value_deffs)
    value_lift = relative_lift_of_means(vt.mean, var_t, n_t, vc.mean, var_c, n_c, alpha, **value_deffs)
    return Comparison(
        difference=float(difference.value),
        difference_low=float(difference.low),
        difference_high=float(difference.high),
        relative_lift=float(relative.value),
        relative_low=float(relative.low),
        relative_high=float(relative.high),
        p_value=float(p_value),
        always_valid_p_value=float(sequence.p_value[-1]),
        sequence_low=float(sequence.low[-1]),
        sequence_high=float(sequence.high[-1]),
        probability_to_beat=beat,
        value_difference=float(welch.difference.value),
        value_difference_low=float(welch.difference.low),
        value_difference_high=float(welch.difference.high),
        value_relative_lift=float(value_lift.value),
        value_relative_low=float(value_lift.low),
        value_relative_high=float(value_lift.high),
        value_p_value=float(welch.p_value),
        p_value_adjusted=float(p_value),
        always_valid_p_value_adjusted=float(sequence.p_value[-1]),
        value_p_value_adjusted=float(welch.p_value),
    )


def offer_results(joined: pa.Table, order: Sequence[str], alpha: float) -> list[OfferResult]:
    """Per group and offer: impressions (rows), conversions, rate, value per impression."""
    summary = joined.group_by(["group", "offer_id"]).aggregate(
        [("decision_id", "count"), ("converted", "sum"), ("value", "sum")]
    )
    results = []
    for row in summary.to_pylist():
        shown, converted = int(row["decision_id_count"]), int(row["converted_sum"])
        estimate = rate(converted, shown, alpha)
        results.append(
            OfferResult(
                group=str(row["group"]),
                offer_id=str(row["offer_id"]),
                impressions=shown,
                conversions=converted,
                rate=float(estimate.value),
                rate_low=float(estimate.low),
                rate_high=float(estimate.high),
                value_per_impression=float(row["value_sum"]) / shown,
            )
        )
    rank = {g: i for i, g in enumerate(order)}
    return sorted(results, key=lambda r: (rank[r.group], -r.rate, r.offer_id))


def load_reports(
    decisions_path: str | os.PathLike[str],
    outcomes_path: str | os.PathLike[str],
    *,
    experiment: str | None = None,
    window: timedelta = timedelta(days=7),
    window_label: str | None = None,
    control: str | None = None,
    alpha: float = 0.05,
    mixture_sd: float | None = None,
) -> list[ExperimentReport]:
    """Reports for one experiment, or for every experiment in the log."""
    decisions, outcomes = read_decisions(decisions_path), read_outcomes(outcomes_path)
    configs = {e.id: e for e in read_experiments(decisions_path)}
    present = sorted(str(e) for e in pc.unique(decisions["experiment"]).to_pylist() if e)
    if experiment is not None and experiment not in present:
        raise InvalidInputError(
            f"no experiment '{experiment}' in {decisions_path} (found: {', '.join(present)})"
        )
    reports = [
        build_report(
            decisions,
            outcomes,
            name,
            window=window,
            window_label=window_label,
            config=configs.get(name),
            control=control,
            alpha=alpha,
            mixture_sd=mixture_sd,
        )
        for name in ([experiment] if experiment else present)
    ]
    return adjust_for_multiple_comparisons(reports)
