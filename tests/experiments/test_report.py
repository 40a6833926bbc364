"""Reports from a simulated holdout log: the numbers, the JSON, the HTML and the command."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from decision_engine.cli.report import report
from decision_engine.decision_log import (
    DecisionLogWriter,
    OutcomeLogWriter,
    read_decisions,
    read_experiments,
    read_outcomes,
)
from decision_engine.experiments import report_format as fmt
from decision_engine.experiments.assignment import Experiment
from decision_engine.experiments.decision_table import DecisionTable, cumulative_counts
from decision_engine.experiments.report import build_report, load_reports
from decision_engine.experiments.report_html import render_html
from decision_engine.experiments.report_model import ExperimentReport
from decision_engine.experiments.report_terminal import print_report
from decision_engine.experiments.report_timeline import group_looks
from decision_engine.experiments.simulate import (
    OFFER_RELATIVE_RATES,
    OFFER_VALUES,
    OFFER_WEIGHTS,
    SimulatedLog,
    simulate_experiment_log,
)
from decision_engine.experiments.stats import ProfileSums, rate, relative_lift, two_proportion_z_test
from rich.console import Console
from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped]

PERSONALIZED_RATE = 0.04


def test_simulated_log_has_the_configured_split(holdout_log: SimulatedLog) -> None:
    decisions = pq.read_table(holdout_log.decisions_path)
    assert decisions.num_rows == holdout_log.decisions == 7 * 12_000
    assert read_experiments(holdout_log.decisions_path) == [holdout_log.experiment]
    rows = decisions.to_pylist()[:500]
    assert all(holdout_log.experiment.group_of(r["profile_id"]) == r["group"] for r in rows)
    assert all(r["offer_id"] == "default_banner" for r in rows if r["group"] == "holdout")


def test_report_recovers_the_true_lift(holdout_log: SimulatedLog) -> None:
    (result,) = load_reports(holdout_log.decisions_path, holdout_log.outcomes_path, window_label="7d")
    assert result.control == "holdout" and [g.name for g in result.groups] == ["holdout", "personalized"]
    holdout, personalized = result.group("holdout"), result.group("personalized")
    assert holdout.decisions + personalized.decisions == holdout_log.decisions
    assert result.outcomes_attributed == holdout_log.outcomes  # the simulation only logs conversions
    comparison = personalized.vs_control
    assert comparison is not None
    truth = holdout_log.true_rates["personalized"] / holdout_log.true_rates["holdout"] - 1
    assert comparison.relative_low <= truth <= comparison.relative_high
    assert (
        comparison.sequence_low
        <= comparison.difference_low
        <= comparison.difference_high
        <= comparison.sequence_high
    )
    assert comparison.probability_to_beat > 0.99
    assert comparison.always_valid_p_value <= 0.05
    # The headline numbers are the library's statistics on the group counts.
    expected = relative_lift(
        personalized.conversions, personalized.decisions, holdout.conversions, holdout.decisions
    )
    assert comparison.relative_lift == pytest.approx(float(expected.value))
    _, p = two_proportion_z_test(
        personalized.conversions, personalized.decisions, holdout.conversions, holdout.decisions
    )
    assert comparison.p_value == pytest.approx(float(p))
    assert result.srm_p_value is not None and result.srm_p_value > 0.001
    # Cumulative timeline ends at the totals; offers add up to the decisions.
    last = [p for p in result.timeline if p.group == "holdout"][-1]
    assert (last.decisions, last.conversions) == (holdout.decisions, holdout.conversions)
    assert sum(o.impressions for o in result.offers) == holdout_log.decisions
    assert result.lift_timeline[-1].always_valid_p_value == comparison.always_valid_p_value


def test_sample_ratio_mismatch_is_flagged(tmp_path: Path) -> None:
    lossy = simulate_experiment_log(
        tmp_path / "d.parquet",
        tmp_path / "o.parquet",
        days=3,
        customers=20_000,
        decisions_per_day=8_000,
        lost_holdout_customers=0.3,
        seed=3,
    )
    (result,) = load_reports(lossy.decisions_path, lossy.outcomes_path)
    assert result.srm_p_value is not None and result.srm_p_value < 0.001


def test_a_shorter_window_attributes_fewer_outcomes(holdout_log: SimulatedLog) -> None:
    decisions, outcomes = read_decisions(holdout_log.decisions_path), read_outcomes(holdout_log.outcomes_path)
    week = build_report(decisions, outcomes, "universal_holdout", window=timedelta(days=7))
    hour = build_report(decisions, outcomes, "universal_holdout", window=timedelta(hours=1), mixture_sd=0.01)
    assert hour.outcomes_attributed < week.outcomes_attributed / 2
    assert hour.mixture_sd == 0.01 and week.srm_p_value is None  # no configuration passed: no SRM check


def test_cli_writes_json_and_html_with_the_same_numbers(holdout_log: SimulatedLog, tmp_path: Path) -> None:
    out_json, out_html = tmp_path / "report.json", tmp_path / "report.html"
    args = [str(holdout_log.decisions_path), str(holdout_log.outcomes_path), "--window", "7d"]
    result = CliRunner().invoke(report, [*args, "--json", str(out_json), "--html", str(out_html)])
    assert result.exit_code == 0, result.output
    assert "personalized" in result.output and "sample ratio" in result.output
    document = json.loads(out_json.read_text())
    (expected,) = load_reports(holdout_log.decisions_path, holdout_log.outcomes_path, window_label="7d")
    assert document["reports"][0] == json.loads(json.dumps(expected.to_dict()))
    page = out_html.read_text()
    assert page.count("<svg") == 3 and "universal_holdout" in page and "always-valid" in page
    lift = expected.group("personalized").vs_control
    assert lift is not None and f"{lift.relative_lift:+.1%}" in page


def test_cli_reports_bad_input_clearly(holdout_log: SimulatedLog, tmp_path: Path) -> None:
    args = [str(holdout_log.decisions_path), str(holdout_log.outcomes_path)]
    unknown = CliRunner().invoke(report, [*args, "--experiment", "nope"])
    assert unknown.exit_code == 1 and "no experiment 'nope'" in unknown.output
    bad_window = CliRunner().invoke(report, [*args, "--window", "a week"])
    assert bad_window.exit_code == 1 and "not a duration" in bad_window.output
    swapped = CliRunner().invoke(report, [args[1], args[0]])
    assert swapped.exit_code == 1 and "missing columns" in swapped.output


def test_html_escapes_names_from_the_log(holdout_log: SimulatedLog) -> None:
    (result,) = load_reports(holdout_log.decisions_path, holdout_log.outcomes_path)
    result.notes.append("<script>alert(1)</script>")
    page = render_html([result])
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_tiny_log_without_conversions_reports_without_crashing(tmp_path: Path) -> None:
    experiment = Experiment.create("tiny", {"control": 0.4, "a": 0.4, "b": 0.2})
    start = datetime(2026, 3, 2, tzinfo=UTC)
    common = {"placement": "hero", "experiment": "tiny", "offer_id": "x", "slot": 0, "propensity": 1.0}
    rows = [
        {
            "decision_id": i,
            "time": start + timedelta(hours=i),
            "profile_id": f"p{i % 5}",
            "group": group,
            **common,
        }
        for i, group in enumerate(["control", "control", "control", "a", "a", "a"])  # p0 is in both
    ]
    with DecisionLogWriter(tmp_path / "d.parquet", [experiment]) as writer:
        writer.append(rows)
    with OutcomeLogWriter(tmp_path / "o.parquet") as writer:
        writer.append([])
    (result,) = load_reports(tmp_path / "d.parquet", tmp_path / "o.parquet")
    comparison = result.group("a").vs_control
    assert comparison is not None and comparison.always_valid_p_value == 1.0
    assert result.srm_p_value is not None and any("'b' has no decisions" in n for n in result.notes)
    assert any(n.startswith("1 profiles have decisions in more than one group") for n in result.notes)
    out_json = tmp_path / "r.json"
    cli = CliRunner().invoke(
        report, [str(tmp_path / "d.parquet"), str(tmp_path / "o.parquet"), "--json", str(out_json)]
    )
    assert cli.exit_code == 0, cli.output
    assert "n/a" in cli.output
    # 0 conversions on both sides: the continuity-corrected lift is 0, its interval inside (-100%, +inf).
    lift = json.loads(out_json.read_text())["reports"][0]["groups"][1]["vs_control"]
    assert lift["relative_lift"] == 0.0 and -1.0 < lift["relative_low"] < 0.0 < lift["relative_high"]
    assert render_html([result]).count("<svg") == 3


def _write_log(
    folder: Path,
    experiments: list[tuple[Experiment, dict[str, float]]],
    *,
    customers: int = 4_000,
    decisions: int = 40_000,
    misrouted: tuple[str, float] | None = None,
    seed: int = 0,
) -> tuple[Path, Path]:
    """A log of ``experiments`` (each with a conversion rate per group), every customer in
    every experiment; ``misrouted`` sends that share of customers to a group by mistake."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"p{i:05d}" for i in range(customers)])
    start, next_id = datetime(2026, 3, 2, tzinfo=UTC).timestamp(), 1
    paths = folder / "d.parquet", folder / "o.parquet"
    with (
        DecisionLogWriter(paths[0], [e for e, _ in experiments]) as log,
        OutcomeLogWriter(paths[1]) as results,
    ):
        for experiment, rates in experiments:
            groups = experiment.groups_of(ids.tolist()).astype(object)
            if misrouted is not None:
                groups = np.where(rng.random(customers) < misrouted[1], misrouted[0], groups)
            who = rng.integers(0, customers, decisions)
            times = start + np.sort(rng.random(decisions)) * 3 * 86_400
            decision_ids = np.arange(next_id, next_id + decisions, dtype=np.uint64)
            next_id += decisions
            log.append(
                {
                    "decision_id": decision_ids,
                    "time": times,
                    "profile_id": ids[who],
                    "placement": np.full(decisions, "hero"),
                    "experiment": np.full(decisions, experiment.id),
                    "group": groups[who].astype(str),
                    "offer_id": np.full(decisions, "x"),
                    "slot": np.zeros(decisions, dtype=np.int32),
                    "propensity": np.ones(decisions),
                }
            )
            converted = rng.random(decisions) < np.array([rates[g] for g in groups[who]])
            k = int(converted.sum())
            results.append(
                {
                    "decision_id": decision_ids[converted],
                    "offer_id": np.full(k, "x"),
                    "time": times[converted] + 600,
                    "reward": np.ones(k),
                    "value": rng.lognormal(3.0, 0.5, k).round(2),
                }
            )
    return paths


def _terminal(report_: ExperimentReport, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    print_report(report_, console)
    return console.export_text()


def test_terminal_report_is_readable_at_80_columns(holdout_log: SimulatedLog, tmp_path: Path) -> None:
    three = Experiment.create("ranking", {"control": 0.4, "personalized_v2": 0.3, "ranking_by_value": 0.3})
    paths = _write_log(
        tmp_path, [(three, {"control": 0.03, "personalized_v2": 0.04, "ranking_by_value": 0.03})]
    )
    reports = [*load_reports(*paths), *load_reports(holdout_log.decisions_path, holdout_log.outcomes_path)]
    assert [g.name for g in reports[0].groups] == ["control", "personalized_v2", "ranking_by_value"]
    for result in reports:
        text = _terminal(result)
        assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
        for g in result.groups:
            assert g.name in text
            c = g.vs_control
            if c is not None:  # conversion and value lift, each with its interval
                assert f"{c.relative_lift:+.1%}" in text and f"{c.value_relative_lift:+.1%}" in text
                assert f"[{c.value_relative_low * 100:+.1f}, {c.value_relative_high * 100:+.1f}]" in text
                assert f"{g.name} vs {result.control}: {fmt.verdict(c, result.alpha)}" in text
    assert "p (Holm)" in _terminal(reports[0]) and "p (Holm)" not in _terminal(reports[1])


def test_headline_says_when_conversions_win_and_value_does_not(tmp_path: Path) -> None:
    """The holdout converts less but on costlier offers: the same value per decision."""
    personalized_value = PERSONALIZED_RATE * (OFFER_WEIGHTS * OFFER_RELATIVE_RATES) @ OFFER_VALUES
    personalized_value /= OFFER_WEIGHTS @ OFFER_RELATIVE_RATES
    log = simulate_experiment_log(
        tmp_path / "d.parquet",
        tmp_path / "o.parquet",
        days=7,
        customers=20_000,
        decisions_per_day=12_000,
        holdout_share=0.1,
        personalized_rate=PERSONALIZED_RATE,
        holdout_value=float(personalized_value / 0.03),
        seed=4,
    )
    (result,) = load_reports(log.decisions_path, log.outcomes_path, window_label="7d")
    c = result.group("personalized").vs_control
    assert c is not None and c.p_value_adjusted < 0.05 and c.value_p_value_adjusted > 0.05
    assert c.value_relative_low < 0 < c.value_relative_high
    assert fmt.verdict(c, result.alpha) == "wins conversions, not value"
    assert "personalized vs holdout: wins conversions, not value" in _terminal(result)
    page = render_html([result])
    assert "wins conversions, not value" in page
    assert (
        fmt.percent_interval(c.value_relative_lift, c.value_relative_low, c.value_relative_high, True) in page
    )


def test_sample_ratio_check_catches_a_zero_share_group_with_traffic(tmp_path: Path) -> None:
    config = Experiment.create("split", {"control": 0.5, "treatment": 0.5, "ghost": 0.0})
    rates = {"control": 0.03, "treatment": 0.03, "ghost": 0.03}
    (result,) = load_reports(*_write_log(tmp_path, [(config, rates)], misrouted=("ghost", 0.23)))
    ghost = result.group("ghost")
    assert ghost.expected_share == 0.0 and ghost.profiles > 500
    assert result.srm_p_value == 0.0
    assert any("'ghost' is configured at 0% share" in note for note in result.notes)
    assert "MISMATCH" in _terminal(result)


def test_comparisons_read_together_are_holm_adjusted(tmp_path: Path) -> None:
    three = Experiment.create("ranking", {"control": 0.4, "a": 0.3, "b": 0.3})
    two = Experiment.create("copy", {"control": 0.5, "short": 0.5}, layer="copy")
    rates3, rates2 = {"control": 0.03, "a": 0.036, "b": 0.031}, {"control": 0.03, "short": 0.03}
    paths = _write_log(tmp_path, [(three, rates3), (two, rates2)])
    everything = load_reports(*paths)
    comparisons = [g.vs_control for r in everything for g in r.groups if g.vs_control]
    assert len(comparisons) == 3 and all(r.comparisons_read_together == 3 for r in everything)
    for name in ("p_value", "always_valid_p_value", "value_p_value"):
        raw = [getattr(c, name) for c in comparisons]
        expected = multipletests(raw, method="holm")[1]
        np.testing.assert_allclose([getattr(c, f"{name}_adjusted") for c in comparisons], expected)
    assert all(any("3 comparisons are read together" in n for n in r.notes) for r in everything)
    (alone,) = load_reports(*paths, experiment="copy")
    copy = alone.group("short").vs_control
    assert copy is not None and alone.comparisons_read_together == 1 and copy.p_value_adjusted == copy.p_value
    assert not any("read together" in n for n in alone.notes)


def test_per_look_profile_sums_match_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    size = 3_000
    table = DecisionTable(
        group_names=["control", "treatment"],
        group=rng.integers(0, 2, size),
        time=np.sort(rng.integers(0, 3 * 86_400, size)) * 1_000_000,
        profile=rng.integers(0, 200, size),
        converted=rng.random(size) < 0.2,
        value=rng.lognormal(1.0, 1.0, size),
    )
    table.value[~table.converted] = 0.0
    order = ["control", "treatment"]
    counts = cumulative_counts(table, order)
    looks = group_looks(table, counts, order)
    checked = 0
    for k in (0, len(counts.ends) // 2, len(counts.ends) - 1):
        for code, name in enumerate(order):
            seen = (counts.index <= k) & (table.group == code)
            n = np.bincount(table.profile[seen], minlength=200).astype(float)
            for metric, sums in (
                (table.converted.astype(float), looks[name].conversion),
                (table.value, looks[name].value),
            ):
                y = np.bincount(table.profile[seen], weights=metric[seen], minlength=200)
                expected = ProfileSums.of_profiles(
                    n, y, np.bincount(table.profile[seen], weights=metric[seen] ** 2, minlength=200)
                )
                for field in dataclasses.fields(ProfileSums):
                    assert getattr(sums, field.name)[k] == pytest.approx(
                        getattr(expected, field.name), rel=1e-12
                    )
                checked += 1
    assert checked == 12


def test_report_infers_at_the_profile(tmp_path: Path) -> None:
    """Customers who differ in how readily they convert: intervals widen by the design effect."""
    log = simulate_experiment_log(
        tmp_path / "d.parquet",
        tmp_path / "o.parquet",
        days=5,
        customers=5_000,
        decisions_per_day=10_000,
        rate_spread=2.0,
        seed=2,
    )
    (result,) = load_reports(log.decisions_path, log.outcomes_path)
    personalized = result.group("personalized")
    assert personalized.design_effect > 1.5
    plain = rate(personalized.conversions, personalized.decisions)
    width, plain_width = personalized.rate_high - personalized.rate_low, float(plain.high - plain.low)
    assert width == pytest.approx(plain_width * np.sqrt(personalized.design_effect), rel=0.05)
