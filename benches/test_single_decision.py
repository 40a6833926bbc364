"""One decision from Python: 100 offers, 32 features, 50 rules, Thompson sampling on 1 slot,
beside MABWiser's Thompson `predict` for one context and a plain-numpy Thompson draw, all on
the same posteriors. p50/p99 come from our own loop of single calls timed with perf_counter_ns
(timer overhead included, ~0.1 us); pytest-benchmark gives the median of its own rounds."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from decision_engine import Engine
from peers import fitted_mabwiser
from results import Recorder, percentiles
from workload import HERO, posteriors

ENGINE_CALLS = 20_000
MABWISER_CALLS = 5_000
WARMUP_CALLS = 500


def timed_loop(call: Callable[[Any], object], args: Sequence[Any], n: int) -> tuple[float, float]:
    """(p50, p99) seconds of `call(args[i % len(args)])` over n calls, after a warm-up."""
    for arg in itertools.islice(itertools.cycle(args), WARMUP_CALLS):
        call(arg)
    durations = np.empty(n, dtype=np.int64)
    clock = time.perf_counter_ns
    for i, arg in enumerate(itertools.islice(itertools.cycle(args), n)):
        start = clock()
        call(arg)
        durations[i] = clock() - start
    return percentiles(durations)


@pytest.fixture(scope="module")
def rows(profiles_1m: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    return list(profiles_1m[:ENGINE_CALLS])


@pytest.mark.benchmark(group="single decide, 100 offers")
def test_engine_decide(benchmark: Any, record: Recorder, engine_100: Engine, rows: list[Any]) -> None:
    def decide(row: npt.NDArray[np.float32]) -> object:
        return engine_100.decide(HERO, row)

    p50, p99 = timed_loop(decide, rows, ENGINE_CALLS)
    cycle = itertools.cycle(rows)
    decision = benchmark(lambda: decide(next(cycle)))
    assert decision.offers  # type: ignore[attr-defined]
    record("single.engine", 1, p50=p50, p99=p99, label=f"{ENGINE_CALLS:,} calls")


@pytest.mark.benchmark(group="single decide, 100 offers")
def test_mabwiser_predict(benchmark: Any, record: Recorder, engine_100: Engine, rows: list[Any]) -> None:
    mab = fitted_mabwiser(engine_100, HERO)
    contexts = [row.reshape(1, -1) for row in rows[:MABWISER_CALLS]]
    p50, p99 = timed_loop(mab.predict, contexts, MABWISER_CALLS)
    cycle = itertools.cycle(contexts)
    arm = benchmark(lambda: mab.predict(next(cycle)))
    assert arm in engine_100.offer_ids
    record("single.mabwiser", 1, p50=p50, p99=p99, label=f"{MABWISER_CALLS:,} calls")


@pytest.mark.benchmark(group="single decide, 100 offers")
def test_numpy_thompson(benchmark: Any, record: Recorder, engine_100: Engine) -> None:
    alpha, beta = posteriors(engine_100, HERO)
    rng = np.random.default_rng(4)

    def draw(_: object) -> int:
        return int(rng.beta(alpha, beta).argmax())

    p50, p99 = timed_loop(draw, [None], ENGINE_CALLS)
    assert 0 <= benchmark(draw, None) < len(alpha)
    record("single.numpy", 1, p50=p50, p99=p99, label=f"{ENGINE_CALLS:,} calls")
