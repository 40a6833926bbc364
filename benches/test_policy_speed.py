"""Bandit policies, speed side by side: 100 arms, 32 float32 features, every learner fitted
first on the same 20,000 logged rows (uniform random arms, Bernoulli rewards from a hidden
per-arm logistic model; VW on the first 2,000 of them). Selection of a batch of contexts and
update on a batch of outcomes, for our Bandit and MABWiser policy by policy, contextualbandits'
LinUCB and Vowpal Wabbit `--cb_explore_adf --epsilon 0.05 -q sa` (examples parsed before
timing: only `predict` and `learn` are timed). Peers run on fewer rows when slow; compare
rates. Rates are per core: our select at threads=1 (and 2), numpy's BLAS held to one thread.
Also one contextual decision (lin_ucb, one row) from Python against MABWiser's `predict` of
one row."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from bandit_peers import vw_action_lines, vw_example, vw_workspace
from contextualbandits.online import LinUCB
from mabwiser.mab import MAB, LearningPolicy
from results import Recorder
from test_single_decision import timed_loop
from threadpoolctl import threadpool_limits

ARMS, FEATURES = 100, 32
WARM_ROWS = 20_000
ROWS = 10_000  # contexts per select call, outcomes per update call
VW_ROWS = 500  # VW takes 0.2-0.3 ms per 100-action example, and pyvw 2.6 ms to parse one
VW_WARM_ROWS = 2_000  # VW's cost per example does not grow with what it learned (hashed weights)
ROUNDS = 5
VW_ROUNDS = 3
SINGLE_CALLS, MABWISER_SINGLE_CALLS = 20_000, 2_000

POLICIES = ["lin_ucb", "lin_thompson", "thompson", "ucb1", "epsilon_greedy", "softmax"]
CONTEXTUAL = {"lin_ucb", "lin_thompson"}  # MABWiser refuses contexts in fit for the others
MABWISER_POLICIES = {
    "lin_ucb": LearningPolicy.LinUCB(),
    "lin_thompson": LearningPolicy.LinTS(),
    "thompson": LearningPolicy.ThompsonSampling(),
    "ucb1": LearningPolicy.UCB1(),
    "epsilon_greedy": LearningPolicy.EpsilonGreedy(),
    "softmax": LearningPolicy.Softmax(),
}


@dataclass(frozen=True)
class Outcomes:
    contexts: npt.NDArray[np.float32]
    arms: npt.NDArray[np.int64]
    rewards: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Workload:
    warm: Outcomes
    fresh: Outcomes  # for the update benchmarks; its contexts are also the selection batch


def _outcomes(rng: np.random.Generator, weights: npt.NDArray[np.float64], n: int) -> Outcomes:
    contexts = rng.standard_normal((n, FEATURES), dtype=np.float32)
    arms = rng.integers(0, ARMS, n)
    logits = np.einsum("nf,nf->n", contexts, weights[arms]) - 2.0  # ~15% click rate
    rewards = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    return Outcomes(contexts, arms, rewards)


@pytest.fixture(scope="module")
def workload() -> Workload:
    rng = np.random.default_rng(11)
    weights = rng.normal(0, 0.3, (ARMS, FEATURES))
    return Workload(_outcomes(rng, weights, WARM_ROWS), _outcomes(rng, weights, ROWS))


def fitted_bandit(policy: str, warm: Outcomes) -> Any:
    from decision_engine import Bandit

    bandit = Bandit({"type": policy}, ARMS, FEATURES, seed=3)
    bandit.update(warm.contexts, warm.arms, warm.rewards)
    return bandit


def fitted_mabwiser(policy: str, warm: Outcomes) -> MAB:
    mab = MAB(list(range(ARMS)), MABWISER_POLICIES[policy], seed=3)
    mab.fit(warm.arms, warm.rewards, warm.contexts if policy in CONTEXTUAL else None)
    return mab


def fitted_contextualbandits(warm: Outcomes) -> LinUCB:
    model = LinUCB(ARMS, alpha=1.0, random_state=3)
    model.fit(warm.contexts, warm.arms, warm.rewards)
    return model


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Per-core rates: numpy's BLAS (the peers' linear algebra) on one thread, like ours at
    threads=1."""
    with threadpool_limits(1):
        yield


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.benchmark(group="bandit select, 100 arms x 32 features")
def test_ours_select(benchmark: Any, record: Recorder, workload: Workload, policy: str, threads: int) -> None:
    bandit = fitted_bandit(policy, workload.warm)
    choices, _ = benchmark.pedantic(
        bandit.select,
        args=(workload.fresh.contexts,),
        kwargs={"threads": threads},
        rounds=ROUNDS,
        warmup_rounds=1,
    )
    assert choices.shape == (ROWS, 1) and choices.min() >= 0
    record(f"policy.select.{policy}.ours.t{threads}", ROWS)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.benchmark(group="bandit update, 100 arms x 32 features")
def test_ours_update(benchmark: Any, record: Recorder, workload: Workload, policy: str) -> None:
    bandit, fresh = fitted_bandit(policy, workload.warm), workload.fresh
    benchmark.pedantic(
        bandit.update, args=(fresh.contexts, fresh.arms, fresh.rewards), rounds=ROUNDS, warmup_rounds=1
    )
    record(f"policy.update.{policy}.ours.t1", ROWS)  # update runs on one thread


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.benchmark(group="bandit select, 100 arms x 32 features")
def test_mabwiser_select(benchmark: Any, record: Recorder, workload: Workload, policy: str) -> None:
    mab = fitted_mabwiser(policy, workload.warm)
    # the context-free policies use the contexts only to know how many decisions to make
    arms = benchmark.pedantic(mab.predict, args=(workload.fresh.contexts,), rounds=ROUNDS, warmup_rounds=1)
    assert len(arms) == ROWS
    record(
        f"policy.select.{policy}.mabwiser", ROWS, label=f"MABWiser {type(MABWISER_POLICIES[policy]).__name__}"
    )


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.benchmark(group="bandit update, 100 arms x 32 features")
def test_mabwiser_update(benchmark: Any, record: Recorder, workload: Workload, policy: str) -> None:
    mab, fresh = fitted_mabwiser(policy, workload.warm), workload.fresh
    contexts = fresh.contexts if policy in CONTEXTUAL else None
    benchmark.pedantic(
        mab.partial_fit, args=(fresh.arms, fresh.rewards, contexts), rounds=ROUNDS, warmup_rounds=1
    )
    record(
        f"policy.update.{policy}.mabwiser", ROWS, label=f"MABWiser {type(MABWISER_POLICIES[policy]).__name__}"
    )


@pytest.mark.benchmark(group="bandit select, 100 arms x 32 features")
def test_contextualbandits_select(benchmark: Any, record: Recorder, workload: Workload) -> None:
    model = fitted_contextualbandits(workload.warm)
    arms = benchmark.pedantic(model.predict, args=(workload.fresh.contexts,), rounds=ROUNDS, warmup_rounds=1)
    assert arms.shape == (ROWS,)
    record("policy.select.lin_ucb.contextualbandits", ROWS, label="contextualbandits LinUCB")


@pytest.mark.benchmark(group="bandit update, 100 arms x 32 features")
def test_contextualbandits_update(benchmark: Any, record: Recorder, workload: Workload) -> None:
    model, fresh = fitted_contextualbandits(workload.warm), workload.fresh
    benchmark.pedantic(
        model.partial_fit, args=(fresh.contexts, fresh.arms, fresh.rewards), rounds=ROUNDS, warmup_rounds=1
    )
    record("policy.update.lin_ucb.contextualbandits", ROWS, label="contextualbandits LinUCB")


class ParsedVowpalWabbit:
    """A VW workspace fitted on the warm rows, and its examples parsed ahead of the timed part."""

    def __init__(self, warm: Outcomes) -> None:
        self.vw = vw_workspace("--epsilon 0.05", seed=3)
        self.actions = vw_action_lines(ARMS)
        warm_rows = zip(warm.contexts, warm.arms, warm.rewards, strict=True)
        for row, arm, reward in itertools.islice(warm_rows, VW_WARM_ROWS):
            self.vw.learn(vw_example(row, self.actions, (int(arm), -float(reward), 1 / ARMS)))

    def parse(self, outcomes: Outcomes, labelled: bool) -> tuple[tuple[list[Any]], dict[str, Any]]:
        """pytest-benchmark `setup`: fresh examples for each round (VW consumes them)."""
        rows = zip(outcomes.contexts[:VW_ROWS], outcomes.arms, outcomes.rewards, strict=False)
        examples = [
            self.vw.parse(
                vw_example(row, self.actions, (int(arm), -float(reward), 1 / ARMS) if labelled else None)
            )
            for row, arm, reward in rows
        ]
        return (examples,), {}

    def finish(self, examples: list[Any]) -> None:
        for example in examples:
            self.vw.finish_example(example)


@pytest.fixture(scope="module")
def parsed_vw(workload: Workload) -> ParsedVowpalWabbit:
    return ParsedVowpalWabbit(workload.warm)


@pytest.mark.benchmark(group="bandit select, 100 arms x 32 features")
def test_vw_predict(
    benchmark: Any, record: Recorder, workload: Workload, parsed_vw: ParsedVowpalWabbit
) -> None:
    pmfs = benchmark.pedantic(
        lambda examples: [parsed_vw.vw.predict(example) for example in examples],
        setup=lambda: parsed_vw.parse(workload.fresh, labelled=False),
        teardown=parsed_vw.finish,
        rounds=VW_ROUNDS,
        warmup_rounds=1,
    )
    assert len(pmfs) == VW_ROWS and len(pmfs[0]) == ARMS
    record("policy.select.vw", VW_ROWS, label="VW cb_explore_adf predict")


@pytest.mark.benchmark(group="bandit update, 100 arms x 32 features")
def test_vw_learn(
    benchmark: Any, record: Recorder, workload: Workload, parsed_vw: ParsedVowpalWabbit
) -> None:
    benchmark.pedantic(
        lambda examples: [parsed_vw.vw.learn(example) for example in examples],
        setup=lambda: parsed_vw.parse(workload.fresh, labelled=True),
        teardown=parsed_vw.finish,
        rounds=VW_ROUNDS,
        warmup_rounds=1,
    )
    record("policy.update.vw", VW_ROWS, label="VW cb_explore_adf learn")


@pytest.mark.benchmark(group="single contextual decision, lin_ucb")
def test_ours_single_lin_ucb(benchmark: Any, record: Recorder, workload: Workload) -> None:
    bandit = fitted_bandit("lin_ucb", workload.warm)
    rows = list(workload.fresh.contexts[:, None, :])  # (1, 32) each

    def select(row: npt.NDArray[np.float32]) -> object:
        return bandit.select(row)

    p50, p99 = timed_loop(select, rows, SINGLE_CALLS)
    cycle = itertools.cycle(rows)
    choices, _ = benchmark(lambda: select(next(cycle)))
    assert choices.shape == (1, 1)
    record("policy.single.ours", 1, p50=p50, p99=p99, label=f"{SINGLE_CALLS:,} calls")


@pytest.mark.benchmark(group="single contextual decision, lin_ucb")
def test_mabwiser_single_lin_ucb(benchmark: Any, record: Recorder, workload: Workload) -> None:
    mab = fitted_mabwiser("lin_ucb", workload.warm)
    rows = list(workload.fresh.contexts[:MABWISER_SINGLE_CALLS, None, :])
    p50, p99 = timed_loop(mab.predict, rows, MABWISER_SINGLE_CALLS)
    cycle = itertools.cycle(rows)
    assert 0 <= benchmark(lambda: mab.predict(next(cycle))) < ARMS
    record("policy.single.mabwiser", 1, p50=p50, p99=p99, label=f"{MABWISER_SINGLE_CALLS:,} calls")
