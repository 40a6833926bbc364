"""Builds experiment reports from a decision log and an outcome log.

The unit is the decision: a decision converts when any of its offers gets an outcome with
a positive reward within the attribution window; its value is the sum of those outcomes'
values. Sample ratios are checked on distinct profiles, the unit of assignment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from decision_engine.decision_log.format import join_outcomes, read_decisions, read_experiments, read_outcomes
from decision_engine.errors import InvalidInputError
from decision_engine.experiments.assignment import Experiment
from decision_engine.experiments.decision_table import DecisionTable, cumulative_counts, iso, per_decision
from decision_engine.experiments.report_model import Comparison, ExperimentReport, GroupResult, OfferResult
from decision_engine.experiments.report_timeline import lift_timeline, rate_timeline
from decision_engine.experiments.sequential import ConfidenceSequence, default_mixture_sd
from decision_engine.experiments.stats import (
    difference_of_proportions,
    probability_to_beat,
    rate,
    relative_lift,
    relative_lift_of_means,
    sample_ratio_mismatch,
    two_proportion_z_test,
    welch_t_test,
)

Mask = npt.NDArray[np.bool_]


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
        mixture_sd = default_mixture_sd(x[control] / n[control])
        notes.append(
            f"mSPRT mixture sd {mixture_sd:.3g} = 0.2 x the control rate in this log; fix it before "
            "the experiment starts (--mixture-sd) for strict always-valid guarantees"
        )
    counts = cumulative_counts(table, order)
    lifts, sequences = lift_timeline(counts, control, alpha, mixture_sd)

    profiles = {g: int(np.unique(table.profile[m]).size) for g, m in masks.items()}
    expected = config.shares if config else {}
    srm, srm_notes = _sample_ratio(profiles, expected)
    notes.extend(srm_notes)
    crossing = sum(profiles.values()) - int(np.unique(table.profile).size)
    if crossing:
        notes.append(f"{crossing} profiles have decisions in more than one group: check the assignment")

    groups = []
    for g in order:
        estimate = rate(x[g], n[g], alpha)
        comparison = None
        if g != control:
            counts_g = (x[g], n[g], x[control], n[control])
            comparison = _compare(table, masks[g], masks[control], counts_g, sequences[g], alpha)
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
                value_per_decision=float(table.value[masks[g]].mean()),
                observed_share=profiles[g] / sum(profiles.values()),
                expected_share=expected.get(g),
                vs_control=comparison,
            )
        )
    start, end = int(table.time.min()), int(table.time.max())
    notes.extend(_censoring_note(outcomes, end, window, label))
    return ExperimentReport(
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
        timeline=rate_timeline(counts, alpha),
        lift_timeline=lifts,
        offers=offer_results(joined, order, alpha),
        notes=notes,
    )


def _sample_ratio(profiles: dict[str, int], shares: dict[str, float]) -> tuple[float | None, list[str]]:
    """SRM p-value over every configured group, including groups with no decisions at all."""
    if not shares or not set(profiles) <= set(shares):
        return None, ["the log carries no configured shares for every group: sample ratio not checked"]
    absent = [g for g, share in shares.items() if share > 0 and g not in profiles]
    notes = [f"configured group '{g}' has no decisions" for g in absent]
    groups = [g for g, share in shares.items() if share > 0]
    return sample_ratio_mismatch([profiles.get(g, 0) for g in groups], [shares[g] for g in groups]), notes


def _censoring_note(outcomes: pa.Table, end: int, window: timedelta, label: str) -> list[str]:
    last_outcome = pc.max(outcomes["time"]).as_py() if outcomes.num_rows else None
    last_seen = max(end, int(last_outcome.timestamp() * 1e6)) if last_outcome else end
    complete_until = last_seen - int(window.total_seconds() * 1e6)
    if complete_until >= end:
        return []
    return [
        f"decisions after {iso(complete_until)} have had less than the {label} window "
        f"(the logs end {iso(last_seen)}); both groups are cut alike, so lift is unbiased"
    ]


def _sample_variance(values: npt.NDArray[np.float64]) -> float:
    return float(values.var(ddof=1)) if values.size > 1 else float("nan")


def _compare(
    table: DecisionTable,
    treatment: Mask,
    control: Mask,
    counts: tuple[int, int, int, int],
    sequence: ConfidenceSequence,
    alpha: float,
) -> Comparison:
    x_t, n_t, x_c, n_c = counts
    difference = difference_of_proportions(x_t, n_t, x_c, n_c, alpha)
    relative = relative_lift(x_t, n_t, x_c, n_c, alpha)
    _, p_value = two_proportion_z_test(x_t, n_t, x_c, n_c)
    v_t, v_c = table.value[treatment], table.value[control]
    var_t, var_c = _sample_variance(v_t), _sample_variance(v_c)
    welch = welch_t_test(v_t.mean(), np.sqrt(var_t), n_t, v_c.mean(), np.sqrt(var_c), n_c, alpha)
    value_lift = relative_lift_of_means(v_t.mean(), var_t, n_t, v_c.mean(), var_c, n_c, alpha)
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
        probability_to_beat=probability_to_beat(x_t, n_t, x_c, n_c),
        value_difference=float(welch.difference.value),
        value_difference_low=float(welch.difference.low),
        value_difference_high=float(welch.difference.high),
        value_relative_lift=float(value_lift.value),
        value_p_value=float(welch.p_value),
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
    return [
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
