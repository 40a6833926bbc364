"""BatchDecider on a real local Ray cluster (two CPUs): the in-process decisions for the same
seed, and `campaign --ray` with two workers."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest
import ray
import ray.data
from click.testing import CliRunner
from decision_engine import Engine
from decision_engine.batch import BatchDecider, decide_arrow
from decision_engine.batch.campaign import run_campaign
from decision_engine.cli import main
from decision_engine.decision_log import read_decisions

from seeds.generator import DEMO_CATALOG
from tests.batch.profiles import profiles_table, with_email_policy, write_profiles

PLACEMENT = "email_weekly"
N = 3_000
EMAIL = {"email": "email_ok"}
# Ray Data warns about its own deprecated settings whenever it copies its context.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    # Blocks of 64 KiB: the small test files then make many blocks, as a large file does, so
    # that every actor gets a share.
    context.target_max_block_size = 64 * 1024
    yield context
    ray.shutdown()


@pytest.fixture
def profiles(tmp_path):
    return write_profiles(tmp_path / "profiles.parquet", Engine(DEMO_CATALOG), N, chunk=1_000, seed=6)


def test_one_actor_makes_the_in_process_decisions_for_the_same_seed(cluster, profiles, tmp_path):
    run_campaign(DEMO_CATALOG, PLACEMENT, profiles, tmp_path / "local.parquet", seed=21, consents=EMAIL)
    expected = pq.read_table(tmp_path / "local.parquet")

    cluster.execution_options.preserve_order = True
    try:
        decided = ray.data.read_parquet(str(profiles)).map_batches(
            BatchDecider,
            fn_constructor_args=(str(DEMO_CATALOG), PLACEMENT),
            fn_constructor_kwargs={"seed": 21, "consents": EMAIL},
            batch_format="pyarrow",
            batch_size=700,
            compute=ray.data.ActorPoolStrategy(size=1),
        )
        table = pa.concat_tables(decided.iter_batches(batch_format="pyarrow", batch_size=None))
    finally:
        cluster.execution_options.preserve_order = False
    assert table.num_rows == N
    assert table.column("profile_id").to_pylist() == [f"p{i}" for i in range(N)]
    # Thompson sampling draws from the stream of (seed, decision id): one actor numbers the
    # rows as the in-process engine does, so every draw, offer and id is the same.
    assert table.select(expected.column_names).equals(expected)


def epsilon_greedy_catalog(tmp_path):
    """The demo catalog with email_weekly on a greedy policy: its choice follows what it learned."""
    text = with_email_policy(DEMO_CATALOG.read_text(encoding="utf-8"), "{type: epsilon_greedy, epsilon: 0.0}")
    path = tmp_path / "greedy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def learned_state(catalog, tmp_path):
    teacher = Engine(catalog, seed=2, clock="simulated")
    for round_ in range(3):
        taught = decide_arrow(
            teacher, PLACEMENT, profiles_table(teacher, 2_000, seed=30 + round_), consents=EMAIL
        )
        ids = taught.column("decision_id").to_numpy()
        for slot in range(2):
            for i, offer in zip(ids, taught.column(f"offer_{slot}").to_pylist(), strict=True):
                if offer is not None:
                    teacher.report_outcome(int(i), float(hash(offer) % 7 == int(i) % 7), offer)
    path = tmp_path / "state.json"
    teacher.save_policy_state(path)
    return path


def test_campaign_on_ray_with_two_workers_decides_as_in_process(cluster, profiles, tmp_path):
    catalog = epsilon_greedy_catalog(tmp_path)
    state = learned_state(catalog, tmp_path)
    run_campaign(
        catalog, PLACEMENT, profiles, tmp_path / "local.parquet", seed=4, policy_state=state, consents=EMAIL
    )
    expected = pq.read_table(tmp_path / "local.parquet")

    out, log = tmp_path / "ray_out", tmp_path / "ray_log"
    args = ["campaign", "--catalog", catalog, "--placement", PLACEMENT, "--profiles", profiles, "--out", out]
    args += ["--ray", "local", "--workers", 2, "--batch-rows", 500, "--seed", 4, "--policy-state", state]
    args += ["--consent", "email=email_ok", "--log", log]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{N:,} decisions" in result.output and "arms loaded" in result.output

    decided = pds.dataset(out, format="parquet").to_table().sort_by("profile_id")
    expected = expected.sort_by("profile_id")
    assert decided.num_rows == N
    assert decided.column("profile_id").equals(expected.column("profile_id"))
    ids = decided.column("decision_id").to_numpy()
    assert len(np.unique(ids)) == N, "decision ids stay distinct across actors"
    tags = np.unique(ids >> 40)
    # Every id carries its actor's tag. How many actors got a batch is Ray's scheduling (on a
    # loaded machine one actor can take them all), so the test asks only that none went untagged.
    assert 1 <= len(tags) <= 2 and 0 not in tags, "each actor tags its ids"
    filled = pc.sum(pc.is_valid(decided.column("offer_0"))).as_py()
    assert 0 < filled < N
    for name in ("offer_0", "offer_1", "score_0", "score_1", "propensity_0", "propensity_1"):
        assert decided.column(name).equals(expected.column(name)), name

    logged = read_decisions(log / "decisions.parquet")
    shown = sum(pc.sum(pc.is_valid(decided.column(f"offer_{s}"))).as_py() for s in range(2))
    assert logged.num_rows == shown
    assert set(logged.column("decision_id").to_numpy()) <= set(ids)
