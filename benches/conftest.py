"""Benchmarks of decision-engine beside its peers, run explicitly:

    python3 -m pytest benches --benchmark-only

(the project's `testpaths` is `tests`, so a plain `pytest` never collects this folder).
Shared workloads are session fixtures; every benchmark records its numbers and the ratio
table is printed at the end of the session.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the `seeds` package lives at the repository root
    sys.path.insert(0, str(ROOT))


def _import_engine(attempts: int = 30) -> None:
    """The extension is rebuilt from time to time; wait for it instead of failing."""
    for attempt in range(attempts):
        try:
            importlib.import_module("decision_engine")
            return
        except ImportError:
            if attempt == attempts - 1:
                raise
            for name in [m for m in sys.modules if m.startswith("decision_engine")]:
                del sys.modules[name]
            time.sleep(2)


_import_engine()

import workload  # noqa: E402
from decision_engine import Engine  # noqa: E402
from results import LOAD, RESULTS, Measurement, Recorder, summary_lines  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = {}
    config.stash[LOAD] = os.getloadavg()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Also collect bench_*.py (the serving benchmarks), unless named on the command line."""
    if (
        file_path.name.startswith("bench_")
        and file_path.suffix == ".py"
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, {})
    if not results:
        return
    terminalreporter.section("decision-engine vs peers")
    for line in summary_lines(results, config.stash.get(LOAD, None)):
        terminalreporter.write_line(line)


@pytest.fixture
def record(request: pytest.FixtureRequest, benchmark: Any) -> Recorder:
    """record(key, items, p50=None, p99=None, label="") after the benchmark ran; `seconds=`
    stands for pytest-benchmark's median when the code under test times itself (a load client
    reporting `items` done in `seconds`)."""

    def record(key: str, items: int, seconds: float | None = None, **extra: Any) -> Measurement:
        median = benchmark.stats.stats.median if seconds is None else seconds
        measurement = Measurement(median, items, **extra)
        request.config.stash[RESULTS][key] = measurement
        return measurement

    return record


@pytest.fixture(scope="session")
def profiles_1m() -> npt.NDArray[np.float32]:
    return workload.profiles(1_000_000)


@pytest.fixture(scope="session")
def engine_100() -> Engine:
    """100 offers, 50 rules, posteriors learned from 20k outcomes in both placements."""
    engine = Engine(workload.build(100, 50).catalog, seed=1, clock="simulated")
    warm_rows = workload.profiles(20_000, seed=workload.SEED + 7)
    workload.warm_up(engine, workload.HERO, warm_rows)
    workload.warm_up(engine, workload.FEED, warm_rows)
    return engine


@pytest.fixture(scope="session")
def engine_5000() -> Engine:
    """5,000 offers, 2,500 rules, posteriors learned from 2k outcomes."""
    engine = Engine(workload.build(5_000, 2_500).catalog, seed=1, clock="simulated")
    workload.warm_up(engine, workload.HERO, workload.profiles(2_000, seed=workload.SEED + 7))
    return engine
