"""A campaign, Parquet to decisions to Parquet, in-process (one engine on every core) and on a
local Ray cluster with 2 workers (one thread each), on the same file: rows/s per core and the
ratio Ray / in-process (target: at least 0.8), and the peak memory of the in-process command.
Ray's time includes starting its actors, as a job's does: 10-25 s on this 2-core machine
whatever the size, so the default file is 10,000,000 rows, where the per-row cost decides the
ratio (at 1M rows the start-up is most of Ray's time). ``CAMPAIGN_BENCH_ROWS`` sets the size.

    python3 -m pytest benches/test_campaign.py --benchmark-only -s
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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

ROWS = int(os.environ.get("CAMPAIGN_BENCH_ROWS", "10000000"))
ROUNDS = 1 if ROWS >= 5_000_000 else 3  # 10M rows: about 80 s in-process, 50 s on Ray
CORES = 2
PLACEMENT = "email_weekly"
EMAIL = {"email": "email_ok"}

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
        run_campaign,
        args=(DEMO_CATALOG, PLACEMENT, profiles, out),
        kwargs={"consents": EMAIL},
        rounds=ROUNDS,
    )
    assert result.rows == ROWS
    record("campaign.in_process", ROWS, label=f"{CORES} cores")


def test_campaign_ray_2_workers(
    benchmark: Any, record: Recorder, cluster: Any, profiles: Path, tmp_path: Path
) -> None:
    out = tmp_path / "decisions"

    def run() -> Any:
        shutil.rmtree(out, ignore_errors=True)
        return run_ray_campaign(
            "local", DEMO_CATALOG, PLACEMENT, profiles, out, consents=EMAIL, concurrency=2
        )

    result = benchmark.pedantic(run, rounds=ROUNDS)
    assert result.rows == ROWS
    record("campaign.ray.w2", ROWS, label="2 workers")


def test_campaign_command_peak_memory(
    benchmark: Any, record: Recorder, profiles: Path, tmp_path: Path
) -> None:
    """The `decision-engine campaign` command in a child process: its own peak resident memory,
    VmHWM, which the child reads at exit (its ru_maxrss, or RUSAGE_CHILDREN here, would count
    the pytest process it was forked from)."""
    out = tmp_path / "command.parquet"
    status = "next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))"
    report = f"import sys; print({status}, file=sys.stderr)"
    script = f"from decision_engine.cli import main\ntry:\n    main()\nfinally:\n    {report}"
    command = [sys.executable, "-c", script, "campaign", "--catalog", str(DEMO_CATALOG)]
    command += ["--placement", PLACEMENT, "--profiles", str(profiles), "--out", str(out)]
    command += ["--consent", "email=email_ok"]
    peaks: list[int] = []

    def run() -> None:
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        peaks.append(int(done.stderr.strip().splitlines()[-1].split()[1]))  # "VmHWM:  N kB"

    benchmark.pedantic(run, rounds=1)
    record("campaign.command", ROWS, label=f"{peaks[-1] / 1024:,.0f} MB peak RSS")
