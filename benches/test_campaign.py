"""A campaign, Parquet to decisions to Parquet, in-process (one engine on every core) and on a
local Ray cluster with 2 workers (one thread each), on the same file: rows/s per core and the
ratio Ray / in-process (target: at least 0.8). Ray's time includes starting its actors, as a
job's does. ``CAMPAIGN_BENCH_ROWS`` sets the file's size (default 1,000,000).

    python3 -m pytest benches/test_campaign.py --benchmark-only -s
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import ray
import ray.data
from decision_engine import Engine
from decision_engine.batch.campaign import run_campaign, run_ray_campaign
from results import Recorder

from seeds.generator import DEMO_CATALOG
from tests.batch.profiles import write_profiles

ROWS = int(os.environ.get("CAMPAIGN_BENCH_ROWS", "1000000"))
CORES = 2
PLACEMENT = "email_weekly"
EMAIL = {"email": "email_ok"}
RATES: dict[str, float] = {}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("campaign") / "profiles.parquet"
    return write_profiles(path, Engine(DEMO_CATALOG), ROWS)


@pytest.fixture(scope="module")
def cluster() -> Any:
    ray.init(num_cpus=CORES, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_campaign_in_process(benchmark: Any, record: Recorder, profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "decisions.parquet"
    result = benchmark.pedantic(
        run_campaign, args=(DEMO_CATALOG, PLACEMENT, profiles, out), kwargs={"consents": EMAIL}, rounds=3
    )
    assert result.rows == ROWS
    RATES["in_process"] = record("campaign.in_process", ROWS).rate / CORES


def test_campaign_ray_2_workers(
    benchmark: Any, record: Recorder, cluster: Any, profiles: Path, tmp_path: Path
) -> None:
    out = tmp_path / "decisions"

    def run() -> Any:
        shutil.rmtree(out, ignore_errors=True)
        return run_ray_campaign(
            "local", DEMO_CATALOG, PLACEMENT, profiles, out, consents=EMAIL, concurrency=2
        )

    result = benchmark.pedantic(run, rounds=3)
    assert result.rows == ROWS
    RATES["ray"] = record("campaign.ray.w2", ROWS).rate / CORES
    if "in_process" in RATES:  # the ratio, printed with -s (run both tests together)
        ratio = RATES["ray"] / RATES["in_process"]
        print(
            f"\ncampaign {ROWS:,} rows: in-process {RATES['in_process']:,.0f} rows/s per core, "
            f"Ray 2 workers {RATES['ray']:,.0f} rows/s per core, ratio {ratio:.2f}x (target 0.8x)"
        )
