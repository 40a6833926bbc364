"""What the embedded store costs: a decision for a known profile (contacts reserved) and
outcome ingestion, in memory and journaled to disk with each fsync policy (`never`: the
kernel's page cache, which survives `kill -9`; `interval`: plus an fsync every 100 ms from
a background thread; `always`: an fsync before each acknowledgement)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import workload
import yaml
from decision_engine import Engine, parse_catalog
from results import Recorder
from test_single_decision import ENGINE_CALLS, timed_loop
from workload import HERO

NOW = 1_800_000_000.0
MODES = ["memory", "never", "interval", "always"]
OUTCOMES = 20_000


def engine_for(mode: str, state_dir: Path) -> Engine:
    document = yaml.safe_load(workload.build(100, 50).yaml_text)
    if mode != "memory":
        document["store"] = {"type": "embedded", "fsync": mode, "fsync_interval_ms": 100}
    catalog = parse_catalog(yaml.safe_dump(document, sort_keys=False), "<bench store>")
    return Engine(catalog, seed=1, state_dir=None if mode == "memory" else state_dir, clock="simulated")


@pytest.mark.benchmark(group="embedded store, single decide")
@pytest.mark.parametrize("mode", MODES)
def test_decide_with_store(
    benchmark: Any, record: Recorder, profiles_1m: npt.NDArray[np.float32], tmp_path: Path, mode: str
) -> None:
    engine = engine_for(mode, tmp_path)
    rows = list(profiles_1m[:ENGINE_CALLS])
    profiles = itertools.cycle(f"p{i}" for i in range(10_000))
    calls = ENGINE_CALLS if mode != "always" else ENGINE_CALLS // 10  # an fsync costs milliseconds

    def decide(row: npt.NDArray[np.float32]) -> object:
        return engine.decide(HERO, row, now=NOW, profile_id=next(profiles))

    p50, p99 = timed_loop(decide, rows, calls)
    cycle = itertools.cycle(rows)
    benchmark.pedantic(lambda: decide(next(cycle)), rounds=200, iterations=1)
    record(f"durable.{mode}.decide", 1, p50=p50, p99=p99, label=f"{calls:,} calls")


@pytest.mark.benchmark(group="embedded store, outcome ingestion")
@pytest.mark.parametrize("mode", MODES)
def test_outcome_ingestion(
    benchmark: Any, record: Recorder, profiles_1m: npt.NDArray[np.float32], tmp_path: Path, mode: str
) -> None:
    engine = engine_for(mode, tmp_path)
    n = OUTCOMES if mode != "always" else OUTCOMES // 20
    batch = engine.decide_batch(HERO, profiles_1m[: n * 3], now=NOW, propensities=False)
    pairs = iter(
        zip(batch.decision_ids.tolist(), engine.offer_id_array(batch.offers[:, 0]).tolist(), strict=True)
    )

    def ingest() -> None:
        for decision_id, offer in itertools.islice(pairs, n):
            engine.report_outcome(decision_id, reward=1.0, offer_id=offer)

    benchmark.pedantic(ingest, rounds=3, iterations=1)
    record(f"durable.{mode}.outcomes", n, label=f"{n:,} outcomes per round")
