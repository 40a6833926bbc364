"""Batch Thompson decisions: the engine (rules + sampling + propensities) on 1 and 2 threads,
beside MABWiser's Thompson batch `predict` and plain numpy (`rng.beta(a, b, (n, arms))
.argmax(1)`), all on the same posteriors. Peers run on fewer rows when slow; compare rates.
The 100-offer case also runs with `propensities=False`, which computes what the peers do."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from decision_engine import Engine
from peers import fitted_mabwiser
from results import Recorder
from workload import FEED, HERO, posteriors

ROUNDS = 5
ROWS_100 = 200_000
ROWS_5000 = 10_000
ROWS_FEED = 20_000
MABWISER_ROWS = 10_000
NUMPY_ROWS_100 = 50_000
NUMPY_ROWS_5000 = 2_000


def run_engine(
    benchmark: Any,
    engine: Engine,
    placement: str,
    rows: npt.NDArray[np.float32],
    threads: int,
    **options: Any,
) -> None:
    batch = benchmark.pedantic(
        engine.decide_batch,
        args=(placement, rows),
        kwargs={"threads": threads, **options},
        rounds=ROUNDS,
        warmup_rounds=1,
    )
    offers = np.asarray(batch.offers)
    assert offers.shape[0] == len(rows) and (offers[:, 0] >= 0).mean() > 0.9


def run_numpy(benchmark: Any, engine: Engine, n: int) -> None:
    alpha, beta = posteriors(engine, HERO)
    rng = np.random.default_rng(5)
    chosen = benchmark.pedantic(
        lambda: rng.beta(alpha, beta, size=(n, len(alpha))).argmax(1), rounds=ROUNDS, warmup_rounds=1
    )
    assert chosen.shape == (n,)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.benchmark(group="batch thompson, 100 offers")
def test_engine_100(
    benchmark: Any, record: Recorder, engine_100: Engine, profiles_1m: Any, threads: int
) -> None:
    run_engine(benchmark, engine_100, HERO, profiles_1m[:ROWS_100], threads)
    record(f"batch100.engine.t{threads}", ROWS_100)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.benchmark(group="batch thompson, 100 offers")
def test_engine_100_scoring_only(
    benchmark: Any, record: Recorder, engine_100: Engine, profiles_1m: Any, threads: int
) -> None:
    """Rules + Thompson draws only, like the peers: `propensities=False`."""
    if "propensities" not in inspect.signature(engine_100.decide_batch).parameters:
        pytest.skip("this build of decide_batch has no propensities option")
    run_engine(benchmark, engine_100, HERO, profiles_1m[:ROWS_100], threads, propensities=False)
    record(f"batch100np.engine.t{threads}", ROWS_100)


@pytest.mark.benchmark(group="batch thompson, 100 offers")
def test_mabwiser_100(benchmark: Any, record: Recorder, engine_100: Engine, profiles_1m: Any) -> None:
    mab = fitted_mabwiser(engine_100, HERO)
    contexts = profiles_1m[:MABWISER_ROWS]
    arms = benchmark.pedantic(mab.predict, args=(contexts,), rounds=ROUNDS, warmup_rounds=1)
    assert len(arms) == MABWISER_ROWS
    record("batch100.mabwiser", MABWISER_ROWS, label="mabwiser predict")


@pytest.mark.benchmark(group="batch thompson, 100 offers")
def test_numpy_100(benchmark: Any, record: Recorder, engine_100: Engine) -> None:
    run_numpy(benchmark, engine_100, NUMPY_ROWS_100)
    record("batch100.numpy", NUMPY_ROWS_100, label="numpy beta+argmax")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.benchmark(group="batch thompson, 5000 offers")
def test_engine_5000(
    benchmark: Any, record: Recorder, engine_5000: Engine, profiles_1m: Any, threads: int
) -> None:
    run_engine(benchmark, engine_5000, HERO, profiles_1m[:ROWS_5000], threads)
    record(f"batch5000.engine.t{threads}", ROWS_5000)


@pytest.mark.benchmark(group="batch thompson, 5000 offers")
def test_numpy_5000(benchmark: Any, record: Recorder, engine_5000: Engine) -> None:
    run_numpy(benchmark, engine_5000, NUMPY_ROWS_5000)
    record("batch5000.numpy", NUMPY_ROWS_5000, label="numpy beta+argmax, 5000 arms")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.benchmark(group="batch, 3 slots, 100 offers")
def test_engine_feed(
    benchmark: Any, record: Recorder, engine_100: Engine, profiles_1m: Any, threads: int
) -> None:
    run_engine(benchmark, engine_100, FEED, profiles_1m[:ROWS_FEED], threads)
    record(f"feed3.engine.t{threads}", ROWS_FEED)
