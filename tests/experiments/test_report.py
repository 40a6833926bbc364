"""Reports from a simulated holdout log: the numbers, the JSON, the HTML and the command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from decision_engine.experiments.assignment import Experiment
from decision_engine.experiments.report import build_report, load_reports
from decision_engine.experiments.report_html import render_html
from decision_engine.experiments.simulate import SimulatedLog, simulate_experiment_log
from decision_engine.experiments.stats import relative_lift, two_proportion_z_test


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
