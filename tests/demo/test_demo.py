"""`decision-engine demo`: the learned policy against the oracle, the best fixed ranking and
uniform random on the same simulated customers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from decision_engine.catalog import load_catalog
from decision_engine.cli import main
from decision_engine.cli.demo import FIXED, ORACLE, RANDOM, DemoResult, policy_label, run_demo
from decision_engine.cli.demo_baselines import best_fixed_keys, fill
from decision_engine.cli.demo_triggers import ENDINGS, REFUSALS

from seeds.generator import DEMO_CATALOG


@pytest.fixture(scope="module")
def short_run() -> DemoResult:
    return run_demo(DEMO_CATALOG, 20_000, seed=3, customers=5_000)


def test_oracle_beats_learned_beats_random(short_run: DemoResult) -> None:
    learned, oracle, fixed, uniform = short_run.results
    assert (oracle.name, fixed.name, uniform.name) == (ORACLE, FIXED, RANDOM)
    assert learned.per_decision.shape == (20_000,) and learned.value_per_decision > 0
    assert oracle.value_per_decision >= learned.value_per_decision >= uniform.value_per_decision
    assert oracle.value_per_decision > fixed.value_per_decision > uniform.value_per_decision
    # the oracle is the best slate for every single decision, not only on average
    for other in (learned, fixed, uniform):
        assert np.all(oracle.per_decision >= other.per_decision - 1e-9), other.name
    assert set(short_run.by_placement) == {p.id for p in load_catalog(DEMO_CATALOG).model.placements}
    plane = short_run.customers  # every decision by id, on profiles loaded once
    assert (plane.profiles, plane.decided_by_id) == (5_000, 20_000) and plane.engine.profile_count == 5_000


def test_labels_name_the_catalogs_real_policy_types(short_run: DemoResult, tmp_path: Path) -> None:
    """The demo catalog runs lin_ucb everywhere (measured best on every placement); a catalog
    with a thompson placement is labelled with both types."""
    assert short_run.results[0].name == "learned (lin_ucb)"
    mixed = tmp_path / "mixed.yaml"
    text = DEMO_CATALOG.read_text()
    first = text.index("\n    policy: ") + len("\n    policy: ")
    mixed.write_text(text[:first] + "thompson" + text[text.index("\n", first) :])
    assert policy_label(load_catalog(mixed)) == "learned (thompson / lin_ucb by placement)"


def test_fill_respects_slots_groups_and_eligibility() -> None:
    keys = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    allowed = np.array([[True, True, False, True, True]])
    groups = np.array([0, 0, 1, 2, 3])
    assert fill(keys, allowed, groups, 2).tolist() == [[True, False, False, True, False]]
    assert fill(keys, allowed, groups, 9).sum() == 3  # one per group, ineligible never
    assert fill(keys, ~allowed & False, groups, 2).sum() == 0


def test_best_fixed_ranking_is_no_worse_than_any_single_order() -> None:
    rng = np.random.default_rng(0)
    expected = rng.random((400, 4)) * np.array([1.0, 2.0, 0.5, 1.5])
    allowed = rng.random((400, 4)) < 0.7
    groups = np.arange(4)
    best = (
        fill(
            np.broadcast_to(best_fixed_keys(expected, allowed, groups, 1), expected.shape), allowed, groups, 1
        )
        * expected
    ).sum()
    for order in rng.permutation(np.tile(np.arange(4.0), (30, 1)), axis=1):
        other = (fill(np.broadcast_to(order, expected.shape), allowed, groups, 1) * expected).sum()
        assert best >= other - 1e-9


def test_command_prints_the_table_and_writes_the_curve(tmp_path: Path) -> None:
    plot = tmp_path / "curve.png"
    args = ["demo", "--decisions", "5000", "--customers", "2000", "--seed", "1", "--plot", str(plot)]
    result = CliRunner().invoke(main, [*args, "--response-model", "basic", "--by-placement"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "basic response model" in output
    for name in ("learned (", "oracle", "best fixed ranking", "uniform random", "gap captured"):
        assert name in output
    assert "Value per decision by placement" in output and "web_home_hero" in output
    assert "profiles loaded 2,000" in output and "decided by id 5,000" in output
    assert "triggered campaign application_abandoned: " in output and " delivered (" in output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_the_triggered_campaign_runs_beside_the_inbound_placements(short_run: DemoResult) -> None:
    """Applications started on web and app visits: some submitted in time (cancelled), the rest
    decided on email_weekly 30 simulated minutes later or when the customer's night is over,
    sent and acknowledged; every instance has ended when the run is over."""
    campaign = short_run.campaign
    assert campaign is not None and campaign.trigger == "application_abandoned"
    counts = campaign.outcomes()
    assert counts["delivered"] > 0 and counts["cancelled"] > 0 and counts["held"] > 0
    assert campaign.engine.pending_timers == 0 and campaign.engine.pending_deliveries == 0
    ended = sum(counts[o] for o in ENDINGS)
    assert ended + sum(counts[o] for o in REFUSALS) == len(campaign.starts)
    # every delivery was sent, some twice (not acknowledged the first time), and acknowledged
    assert counts["acknowledged"] == counts["delivered"]
    assert campaign.sent == counts["delivered"] + campaign.redelivered
    summary = campaign.summary()
    assert summary.startswith("triggered campaign application_abandoned: ")
    assert f"{ended:,} started the trigger" in summary
    assert f"{counts['cancelled']:,} cancelled by a submitted application" in summary
    assert f"{counts['delivered']:,} delivered ({counts['delivered']:,} acknowledged" in summary
