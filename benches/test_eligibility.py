"""Batch eligibility: 1M profiles x 50 rules, engine.evaluate_rules on 1 and 2 threads beside
the same 50 rules as polars expressions (`df.select([...])`, polars' own pool on all cores)
over a DataFrame of the same float32 data, built outside the timed region. The results must
be identical (checked outside timing)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from decision_engine import Engine
from results import Recorder
from rules import polars_exprs
from workload import Workload, build, frame

ROUNDS = 5
N_RULES = 50


@pytest.fixture(scope="module")
def rules_workload() -> Workload:
    """50 offers, each with one of the same 50 rules as the 100-offer catalog."""
    return build(N_RULES, N_RULES)


@pytest.fixture(scope="module")
def rules_engine(rules_workload: Workload) -> Engine:
    return Engine(rules_workload.catalog, seed=1, clock="simulated")


@pytest.fixture(scope="module")
def engine_result(rules_engine: Engine, profiles_1m: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    return rules_engine.evaluate_rules(profiles_1m)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.benchmark(group="eligibility, 1M x 50 rules")
def test_engine_rules(
    benchmark: Any,
    record: Recorder,
    rules_engine: Engine,
    profiles_1m: npt.NDArray[np.float32],
    engine_result: npt.NDArray[np.bool_],
    threads: int,
) -> None:
    eligible = benchmark.pedantic(
        rules_engine.evaluate_rules,
        args=(profiles_1m,),
        kwargs={"threads": threads},
        rounds=ROUNDS,
        warmup_rounds=1,
    )
    assert np.array_equal(eligible, engine_result)
    record(f"elig.engine.t{threads}", len(profiles_1m))


@pytest.mark.benchmark(group="eligibility, 1M x 50 rules")
def test_polars_rules(
    benchmark: Any,
    record: Recorder,
    rules_workload: Workload,
    profiles_1m: npt.NDArray[np.float32],
    engine_result: npt.NDArray[np.bool_],
) -> None:
    df = frame(profiles_1m)
    exprs = polars_exprs(rules_workload.rules)
    eligible = benchmark.pedantic(df.select, args=(exprs,), rounds=ROUNDS, warmup_rounds=1)
    assert eligible.shape == engine_result.shape
    mismatched = [
        c
        for j, c in enumerate(eligible.columns)
        if not np.array_equal(eligible[c].to_numpy(), engine_result[:, j])
    ]
    assert not mismatched, f"engine and polars disagree on {mismatched}"
    threads = pl.thread_pool_size()
    record("elig.polars", len(profiles_1m), label=f"polars select ({threads} threads = all cores)")


@pytest.mark.benchmark(group="eligibility, 1M x 50 rules")
def test_polars_rules_from_numpy(
    benchmark: Any, record: Recorder, rules_workload: Workload, profiles_1m: npt.NDArray[np.float32]
) -> None:
    """The same, starting like the engine does: from the (rows x features) numpy array."""
    exprs = polars_exprs(rules_workload.rules)

    def from_rows() -> pl.DataFrame:
        return frame(profiles_1m).select(exprs)

    eligible = benchmark.pedantic(from_rows, rounds=ROUNDS, warmup_rounds=1)
    assert eligible.shape == (len(profiles_1m), N_RULES)
    record("elig.polars_numpy", len(profiles_1m), label="polars DataFrame from the numpy rows + select")
