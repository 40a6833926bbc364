"""Volume budgets over a campaign split into batches and over Ray actors: exact, close to
the one-batch allocation, and not counted twice when an actor fails and its batch is
retried. Also: the same decisions on two actors as in one process, for the same seed."""

import os
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest
import ray
import ray.data
from decision_engine import Engine
from decision_engine.batch import BatchDecider, decide_arrow
from decision_engine.batch.arrow import consent_matrix, feature_matrix
from decision_engine.batch.budgets import BudgetLedger, RayLedger, batch_key, offer_counts
from decision_engine.batch.campaign import first_pass, input_columns, run_campaign, run_ray_campaign

from seeds.generator import DEMO_CATALOG
from tests.batch.profiles import profiles_table, with_email_policy, write_profiles
from tests.clock import NOW_SECONDS

PLACEMENT = "email_weekly"
EMAIL = {"email": "email_ok"}
N = 6_000
BUDGETS = {"life_insurance": 300, "pension_topup": 250}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def catalog_with(tmp_path: Path, budgets: dict[str, int] = BUDGETS, policy: str | None = None) -> Path:
    """The demo catalog with impression ``budgets`` on email offers (and email_weekly's
    policy replaced by ``policy``, when given)."""
    text = DEMO_CATALOG.read_text(encoding="utf-8")
    for offer, volume in budgets.items():
        text, count = re.subn(
            rf"(  - id: {offer}\n(?:    .*\n)*?    value: .*\n)",
            rf"\1    budget: {{max: {volume}, window: 1d, pacing: none}}\n",
            text,
            count=1,
        )
        assert count == 1, offer
    if policy is not None:
        text = with_email_policy(text, policy)
    path = tmp_path / "budgets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def policy_state(tmp_path_factory):
    """What email_weekly's lin_ucb learned from 6,000 decisions: an untrained linear arm
    expects nothing of any offer, and a budget then has no price."""
    folder = tmp_path_factory.mktemp("state")
    teacher = Engine(catalog_with(folder, budgets={}), seed=2, clock="simulated")
    rng = np.random.default_rng(4)
    rates = {offer: 0.02 + 0.1 * rng.random() for offer in teacher.offer_ids}
    for round_ in range(3):
        taught = decide_arrow(
            teacher, PLACEMENT, profiles_table(teacher, 2_000, seed=30 + round_), consents=EMAIL
        )
        ids = taught.column("decision_id").to_numpy()
        for slot in range(2):
            for i, offer in zip(ids, taught.column(f"offer_{slot}").to_pylist(), strict=True):
                if offer is not None:
                    teacher.report_outcome(int(i), float(rng.random() < rates[offer]), offer)
    path = folder / "state.json"
    teacher.save_policy_state(path)
    return path


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.target_max_block_size = 64 * 1024  # many blocks, so both actors get some
    yield context
    ray.shutdown()


@pytest.fixture
def profiles(tmp_path):
    return write_profiles(tmp_path / "profiles.parquet", Engine(DEMO_CATALOG), N, chunk=1_000, seed=9)


def one_batch_value(catalog: Path, profiles: Path, state: Path) -> tuple[float, dict[str, int]]:
    """The value (sum of expected values) of allocating the whole file as one batch."""
    engine = Engine(catalog, clock="simulated")
    engine.load_policy_state(state)
    table = pq.read_table(profiles)
    batch = engine.decide_batch(
        PLACEMENT,
        feature_matrix(table, engine),
        consents=consent_matrix(table, engine, EMAIL),
        now=NOW_SECONDS,
        allocate_budgets=True,
    )
    counts = {o: int((batch.offers == engine.offer_ids.index(o)).sum()) for o in BUDGETS}
    return float(np.nansum(batch.scores)), counts


def value_of(decided: pa.Table) -> float:
    return float(sum(pc.sum(decided.column(f"score_{s}")).as_py() or 0.0 for s in range(2)))


def counts_of(decided: pa.Table) -> dict[str, int]:
    return offer_counts(decided.combine_chunks().to_batches()[0], BUDGETS, 2)


def test_the_ledger_counts_a_retried_batch_once():
    ledger = BudgetLedger({"a": 10, "b": 5})
    assert ledger.take("k1#0", {"a": 6, "b": 1}) == {"a": 6, "b": 1}
    assert ledger.available("k2#0") == {"a": 4, "b": 4}
    assert ledger.take("k2#0", {"a": 6}) == {"a": 4, "b": 0}, "only what is left"
    assert ledger.available("k1#0") == {"a": 6, "b": 5}, "a key may take again what it holds"
    assert ledger.take("k1#0", {"a": 6, "b": 1}) == {"a": 6, "b": 1}, "a retry replaces its take"
    assert ledger.used() == {"a": 10, "b": 1}
    ledger.take("k1#1", {"b": 2})
    ledger.finish("k1", 1)  # the batch's final attempt needed one round: round 1 is given back
    assert ledger.used() == {"a": 10, "b": 1}


def test_a_batch_key_names_its_rows():
    engine = Engine(DEMO_CATALOG)
    table = profiles_table(engine, 100, seed=1)
    assert batch_key(table, "profile_id") == batch_key(table.slice(0), "profile_id")
    assert batch_key(table.slice(0, 50), "profile_id") != batch_key(table.slice(50, 50), "profile_id")
    assert batch_key(table.slice(10, 20), "profile_id") == batch_key(
        table.take(pa.array(range(10, 30))), "profile_id"
    )


def test_an_in_process_campaign_in_batches_keeps_budgets_and_nearly_all_the_value(
    profiles, policy_state, tmp_path
):
    catalog = catalog_with(tmp_path)
    best, best_counts = one_batch_value(catalog, profiles, policy_state)
    assert all(0.95 * BUDGETS[o] <= best_counts[o] <= BUDGETS[o] for o in BUDGETS), "both budgets bind"

    out = tmp_path / "decided.parquet"
    result = run_campaign(
        catalog,
        PLACEMENT,
        profiles,
        out,
        batch_rows=500,
        consents=EMAIL,
        now=NOW_SECONDS,
        policy_state=policy_state,
    )
    decided = pq.read_table(out)
    counts = counts_of(decided)
    assert all(counts[o] <= BUDGETS[o] for o in BUDGETS), counts
    assert result.budget_used == counts
    assert result.budgets is not None and result.budgets.sampled_rows == N
    assert all(result.budgets.prices[o] > 0 for o in BUDGETS), result.budgets
    ratio = value_of(decided) / best
    print(f"in-process, 12 batches: {ratio:.4f} of the one-batch value, {counts}")
    assert ratio >= 0.98

    # At price zero (no first pass) the batches spend the budgets first come, first served.
    engine = Engine(catalog, clock="simulated")
    engine.load_policy_state(policy_state)
    greedy = 0.0
    for batch in pq.ParquetFile(profiles).iter_batches(500):
        chosen = engine.decide_batch(
            PLACEMENT,
            feature_matrix(batch, engine),
            consents=consent_matrix(batch, engine, EMAIL),
            now=NOW_SECONDS,
            prices=dict.fromkeys(BUDGETS, 0.0),
        )
        greedy += float(np.nansum(chosen.scores))
    print(f"first come, first served: {greedy / best:.4f}")
    assert value_of(decided) > greedy


def test_prices_from_a_sample_approach_those_from_every_row(profiles, policy_state, tmp_path):
    engine = Engine(catalog_with(tmp_path), clock="simulated")
    engine.load_policy_state(policy_state)
    source = pq.ParquetFile(profiles)
    columns = input_columns(engine, "profile_id", EMAIL)
    full = first_pass(engine, PLACEMENT, source, columns, consents=EMAIL, now=NOW_SECONDS)
    sampled = first_pass(
        engine, PLACEMENT, source, columns, consents=EMAIL, now=NOW_SECONDS, sample_rows=2_000
    )
    assert full is not None and sampled is not None
    assert sampled.sampled_rows == 2_000 and full.sampled_rows == N
    for offer in BUDGETS:
        assert sampled.prices[offer] == pytest.approx(full.prices[offer], rel=0.25), offer


def test_a_ray_campaign_keeps_budgets_exact_across_actors(cluster, profiles, policy_state, tmp_path):
    catalog = catalog_with(tmp_path)
    best, _ = one_batch_value(catalog, profiles, policy_state)
    out = tmp_path / "ray_out"
    result = run_ray_campaign(
        "local",
        catalog,
        PLACEMENT,
        profiles,
        out,
        batch_rows=400,
        consents=EMAIL,
        now=NOW_SECONDS,
        concurrency=2,
        policy_state=policy_state,
    )
    decided = pds.dataset(out, format="parquet").to_table()
    assert decided.num_rows == N
    counts = counts_of(decided)
    assert all(counts[o] <= BUDGETS[o] for o in BUDGETS), counts
    assert result.budget_used == counts, "the ledger counted exactly what the output shows"
    ratio = value_of(decided) / best
    print(f"Ray, 2 actors: {ratio:.4f} of the one-batch value, {counts}")
    assert ratio >= 0.98


class CrashOnce(BatchDecider):
    """A decider whose process dies right after its first batch took its budget share."""

    def decide(self, batch, *, row_offset=0):
        decided = super().decide(batch, row_offset=row_offset)
        marker = Path(os.environ["CRASH_MARKER"])
        if not marker.exists():
            marker.write_text("crashed")
            os._exit(1)
        return decided


def test_a_failed_actor_is_retried_without_counting_its_budget_twice(
    cluster, profiles, policy_state, tmp_path
):
    catalog = catalog_with(tmp_path)
    probe = Engine(catalog, clock="simulated")
    probe.load_policy_state(policy_state)
    columns = input_columns(probe, "profile_id", EMAIL)
    budgets = first_pass(probe, PLACEMENT, pq.ParquetFile(profiles), columns, consents=EMAIL, now=NOW_SECONDS)
    assert budgets is not None
    ledger = RayLedger.start(budgets.room)
    marker = tmp_path / "crashed"
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    decided = ray.data.read_parquet(str(profiles)).map_batches(
        CrashOnce,
        fn_constructor_args=(str(catalog), PLACEMENT),
        fn_constructor_kwargs={
            "consents": EMAIL,
            "now": NOW_SECONDS,
            "prices": budgets.prices,
            "ledger": ledger,
            "unique_ids": True,
            "policy_state": str(policy_state),
        },
        batch_format="pyarrow",
        batch_size=400,
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=0.5,  # as run_ray_campaign: room for the read tasks beside two actors
        runtime_env={"env_vars": {"CRASH_MARKER": str(marker)}},
    )
    table = pa.concat_tables(decided.iter_batches(batch_format="pyarrow", batch_size=None))
    assert marker.exists(), "an actor died"
    assert table.num_rows == N
    assert sorted(table.column("profile_id").to_pylist()) == sorted(f"p{i}" for i in range(N))
    counts = counts_of(table)
    assert ledger.used() == counts, "the crashed attempt's take was replaced, not added"
    assert all(counts[o] <= BUDGETS[o] for o in BUDGETS)


def test_two_actors_make_the_in_process_decisions_of_a_sampling_policy(cluster, profiles, tmp_path):
    catalog = catalog_with(tmp_path, budgets={}, policy="{type: thompson}")  # no order matters
    run_campaign(catalog, PLACEMENT, profiles, tmp_path / "local.parquet", seed=8, stream=3, consents=EMAIL)
    expected = pq.read_table(tmp_path / "local.parquet").sort_by("profile_id")
    run_ray_campaign(
        "local",
        catalog,
        PLACEMENT,
        profiles,
        tmp_path / "ray",
        seed=8,
        stream=3,
        consents=EMAIL,
        concurrency=2,
    )
    decided = pds.dataset(tmp_path / "ray", format="parquet").to_table().sort_by("profile_id")
    assert decided.column("profile_id").equals(expected.column("profile_id"))
    for name in ("offer_0", "offer_1", "propensity_0", "propensity_1"):
        assert decided.column(name).equals(expected.column(name)), name
    assert len(set(decided.column("offer_0").to_pylist())) > 3, "a sampling policy, several offers"
    other = tmp_path / "other.parquet"
    run_campaign(catalog, PLACEMENT, profiles, other, seed=8, stream=4, consents=EMAIL)
    assert not pq.read_table(other).sort_by("profile_id").column("offer_0").equals(expected.column("offer_0"))
