"""`decision-engine campaign` end to end on small Parquet files: decisions, the decision log,
policy state, a simulated clock, and bad rows named by their row in the file."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from decision_engine import Engine
from decision_engine.batch import decide_arrow
from decision_engine.cli import main
from decision_engine.decision_log import load_decision_log, read_decisions, read_outcomes

from seeds.generator import DEMO_CATALOG
from tests.batch.profiles import profiles_table, write_profiles
from tests.clock import NOW

PLACEMENT = "email_weekly"
N = 2_500


@pytest.fixture
def profiles(tmp_path):
    return write_profiles(tmp_path / "profiles.parquet", Engine(DEMO_CATALOG), N, chunk=1_000, seed=4)


def campaign(*args):
    base = ["campaign", "--catalog", str(DEMO_CATALOG), "--placement", PLACEMENT]
    return CliRunner().invoke(main, [*base, *map(str, args)], catch_exceptions=False)


def test_campaign_decides_every_profile_in_batches_with_its_log(profiles, tmp_path):
    out, log = tmp_path / "decisions.parquet", tmp_path / "log"
    result = campaign(
        "--profiles", profiles, "--out", out, "--batch-rows", 600, "--seed", 9,
        "--consent", "email=email_ok", "--log", log,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{N:,} decisions" in result.output and str(out) in result.output

    decided = pq.read_table(out)
    assert decided.num_rows == N
    assert decided.column("profile_id").to_pylist() == [f"p{i}" for i in range(N)]
    assert pq.ParquetFile(out).metadata.num_row_groups == 5, "written batch by batch"
    # One engine through every batch: the same decisions as one call over the whole file.
    reference = Engine(DEMO_CATALOG, seed=9)
    expected = decide_arrow(
        reference, PLACEMENT, pq.read_table(profiles), consents={"email": "email_ok"}, stream=0
    )
    assert decided.drop_columns(["features_hash"]).equals(pa.Table.from_batches([expected]))
    assert not list(tmp_path.glob("*.partial"))

    logged = read_decisions(log / "decisions.parquet", optional=True)
    shown = sum(decided.column(f"offer_{s}").drop_null().length() for s in range(2))
    assert shown > N // 4 and logged.num_rows == shown, "one log row per chosen offer"
    assert set(logged.column("placement").to_pylist()) == {PLACEMENT}
    assert set(logged.column("policy_version").to_pylist()) == {reference.policy_version}
    first = decided.filter(pc.is_valid(decided["offer_0"])).slice(0, 1).to_pylist()[0]
    row = logged.filter(pc.equal(logged["decision_id"], first["decision_id"])).sort_by("slot").to_pylist()[0]
    assert (row["profile_id"], row["offer_id"], row["slot"]) == (first["profile_id"], first["offer_0"], 0)
    assert row["propensity"] == pytest.approx(first["propensity_0"])
    assert row["features_hash"] == first["features_hash"] and len(row["features_hash"]) == 16
    assert read_outcomes(log / "outcomes.parquet").num_rows == 0

    # The log is what off-policy evaluation reads.
    bandit = load_decision_log(log / "decisions.parquet", log / "outcomes.parquet", placement=PLACEMENT)
    assert len(bandit.reward) == shown and np.all(bandit.reward == 0)
    assert np.all((bandit.propensity > 0) & (bandit.propensity <= 1))


def test_campaign_with_policy_state_and_a_simulated_clock(profiles, tmp_path):
    teacher = Engine(DEMO_CATALOG, seed=1, clock="simulated")
    table = profiles_table(teacher, 400, seed=8)
    taught = decide_arrow(teacher, PLACEMENT, table, consents={"email": "email_ok"}, now=NOW)
    shown = zip(taught["decision_id"].to_numpy(), taught["offer_0"].to_pylist(), strict=True)
    rewarded = [(int(i), o) for i, o in shown if o is not None]
    assert len(rewarded) > 100
    for decision_id, offer in rewarded:
        teacher.report_outcome(decision_id, float(offer in ("life_insurance", "wealth_review")), offer)
    state = tmp_path / "state.json"
    teacher.save_policy_state(state)

    out, log = tmp_path / "decided.parquet", tmp_path / "log"
    result = campaign(
        "--profiles", profiles, "--out", out, "--policy-state", state, "--now", "2025-01-01T00:00:00",
        "--consent", "email=email_ok", "--log", log, "--seed", 3,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    loaded = Engine(DEMO_CATALOG, seed=3, clock="simulated").load_policy_state(state)
    assert loaded[0] > 0 and f"{loaded[0]} arms loaded" in result.output

    learned = Engine(DEMO_CATALOG, seed=3, clock="simulated")
    learned.load_policy_state(state)
    expected = decide_arrow(
        learned, PLACEMENT, pq.read_table(profiles), consents={"email": "email_ok"}, now=NOW
    )
    decided = pq.read_table(out)
    assert decided.column("offer_0").equals(pa.chunked_array([expected.column("offer_0")]))
    fresh = decide_arrow(
        Engine(DEMO_CATALOG, seed=3, clock="simulated"), PLACEMENT, pq.read_table(profiles),
        consents={"email": "email_ok"}, now=NOW,
    )  # fmt: skip
    assert not decided.column("offer_0").equals(pa.chunked_array([fresh.column("offer_0")])), (
        "the state counts"
    )
    times = read_decisions(log / "decisions.parquet").column("time").to_pylist()
    assert {t.isoformat() for t in times} == {NOW.isoformat()}


def test_a_bad_row_stops_the_campaign_naming_its_row_in_the_file(tmp_path):
    table = profiles_table(Engine(DEMO_CATALOG), 1_000, seed=2)
    scores = np.asarray(table["credit_score"].to_numpy(), dtype=np.float64)
    scores[777] = np.nan
    table = table.set_column(table.schema.get_field_index("credit_score"), "credit_score", pa.array(scores))
    pq.write_table(table, tmp_path / "bad.parquet")
    out = tmp_path / "out.parquet"

    result = campaign("--profiles", tmp_path / "bad.parquet", "--out", out, "--batch-rows", 300)
    assert result.exit_code == 1
    assert "feature 'credit_score' in row 777 (profile 'p777'): NaN is not a finite number" in result.output
    assert not out.exists(), "no output is published for a failed run"

    pq.write_table(table.drop_columns(["tenure_months", "profile_id"]), tmp_path / "short.parquet")
    result = campaign("--profiles", tmp_path / "short.parquet", "--out", out)
    assert result.exit_code == 1
    assert "short.parquet: missing columns profile_id, tenure_months" in result.output


def test_campaign_refuses_bad_options(profiles, tmp_path):
    result = campaign("--profiles", profiles, "--out", tmp_path / "o.parquet", "--consent", "fax=email_ok")
    assert result.exit_code == 1 and "consents: unknown channel 'fax'" in result.output
    result = campaign("--profiles", profiles, "--out", tmp_path / "o.parquet", "--batch-rows", 0)
    assert result.exit_code == 2 and "--batch-rows" in result.output
