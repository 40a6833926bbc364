"""What the contact policy costs at decision time, and budget allocation over a big batch.

Single decisions on the 100-offer workload with a contact policy (caps per offer, group,
channel and in all, cooldowns): anonymous (no history), a profile with an empty history,
and a profile with a populated history (40 recent contacts over 20 offers, below every cap,
so all offers stay candidates). Then `decide_batch(allocate_budgets=True)` over 1M profiles
with a budget on every offer, beside the plain batch decide on the same rows."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import workload
import yaml
from decision_engine import Contact, Engine, parse_catalog
from results import Recorder
from test_single_decision import ENGINE_CALLS, timed_loop
from workload import HERO

NOW = 1_800_000_000.0
POLICY = """
contact_policy:
  caps:
    - {scope: channel, channel: web, max: 1000, window: 1d}
    - {scope: all, max: 1000, window: 7d}
    - {scope: offer, max: 50, window: 7d}
  cooldown_after_conversion: 14d
  cooldown_after_dismissal: 3d
  suppress_purchased: true
"""


def with_policy(text: str, budget: int | None = None) -> Engine:
    document = yaml.safe_load(text)
    if budget is not None:  # a daily budget on every offer, without pacing
        for offer in document["offers"]:
            offer["budget"] = {"max": budget, "pacing": "none"}
    document |= yaml.safe_load(POLICY)
    return Engine(
        parse_catalog(yaml.safe_dump(document, sort_keys=False), "<bench with contact policy>"),
        seed=1,
        clock="simulated",
    )


@pytest.fixture(scope="module")
def policy_engine() -> Engine:
    return with_policy(workload.build(100, 50).yaml_text)


def history(engine: Engine) -> list[Contact]:
    offers = engine.offer_ids[:20]
    return [Contact(offers[i % 20], "web", NOW - 3600.0 * (i + 1)) for i in range(40)]


@pytest.mark.benchmark(group="contact policy, single decide")
@pytest.mark.parametrize("case", ["anonymous", "empty history", "40 contacts"])
def test_decide_with_contact_policy(
    benchmark: Any, record: Recorder, policy_engine: Engine, profiles_1m: npt.NDArray[np.float32], case: str
) -> None:
    rows = list(profiles_1m[:ENGINE_CALLS])
    contacts = history(policy_engine) if case == "40 contacts" else []
    profile = None if case == "anonymous" else "bench-profile"

    def decide(row: npt.NDArray[np.float32]) -> object:
        d = policy_engine.decide(HERO, row, now=NOW, profile_id=profile, history=contacts)
        if profile is not None and d.offers:  # keep the stored history as it is: give it back
            policy_engine.release(d.decision_id)
        return d

    p50, p99 = timed_loop(decide, rows, ENGINE_CALLS)
    cycle = itertools.cycle(rows)
    benchmark(lambda: decide(next(cycle)))
    record(f"contact.{case}", 1, p50=p50, p99=p99, label=f"{ENGINE_CALLS:,} calls")


@pytest.mark.benchmark(group="batch with budgets, 1M x 100 offers")
@pytest.mark.parametrize("allocate", [False, True], ids=["decide_batch", "allocate_budgets"])
def test_batch_under_budgets(
    benchmark: Any, record: Recorder, profiles_1m: npt.NDArray[np.float32], allocate: bool
) -> None:
    text = workload.build(100, 50).yaml_text
    rows = profiles_1m

    def run() -> object:
        engine = with_policy(text, budget=20_000)  # fresh budgets every round
        return engine.decide_batch(HERO, rows, now=NOW, allocate_budgets=allocate, propensities=not allocate)

    batch = benchmark.pedantic(run, rounds=2, iterations=1)
    counts = np.bincount(batch.offers[batch.offers >= 0], minlength=100)  # type: ignore[attr-defined]
    assert counts.max() <= 20_000
    key = "budget.allocate" if allocate else "budget.decide_batch"
    record(key, len(rows), label=f"{len(rows):,} profiles, 100 offers, budget 20k each")
