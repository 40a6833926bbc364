"""What sharing state through Redis costs: single-decision latency and outcome ingestion with
the in-memory (embedded) engine and with an engine keeping its state in Redis on loopback, in
one run.

The workload is the 100-offer catalog with a contact policy (caps per channel, in all and
per offer, cooldowns) and a profile id on every decision, so the engine reads the profile's
shared history and budgets (round trip 1) and commits the contacts and the pending decision
(round trip 2). Redis is a real `redis-server` started on a free loopback port for this
module. The summary lines are printed at the end of the module.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import workload
import yaml
from decision_engine import Engine, parse_catalog
from results import Measurement, Recorder
from test_contact_policy import POLICY
from test_single_decision import timed_loop
from workload import HERO

from tests.store.redis_server import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

CALLS = {"embedded": 20_000, "redis": 5_000}
OUTCOMES = 5_000
PROFILES = 10_000


def _time(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us" if seconds < 1e-2 else f"{seconds * 1e3:.1f} ms"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


def _engine(seed: int, store_url: str | None = None) -> Engine:
    document = yaml.safe_load(workload.build(100, 50).yaml_text)
    document |= yaml.safe_load(POLICY)
    catalog = parse_catalog(yaml.safe_dump(document, sort_keys=False), "<bench>")
    return Engine(catalog, seed=seed, clock="simulated", store_url=store_url)


@pytest.fixture(scope="module")
def stores(redis_url: str) -> Iterator[tuple[Engine, Engine, Engine]]:
    """An engine keeping its state itself (the embedded store), and two servers of one Redis."""
    a, b = _engine(2, redis_url), _engine(3, redis_url)
    yield _engine(1), a, b
    a.close()
    b.close()


@pytest.fixture(scope="module")
def summary(request: pytest.FixtureRequest) -> Iterator[dict[str, Measurement]]:
    found: dict[str, Measurement] = {}
    yield found
    reporter: Any = request.config.pluginmanager.get_plugin("terminalreporter")
    capture: Any = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not found:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        for line in _summary_lines(found):
            reporter.write_line(line)


def _summary_lines(found: dict[str, Measurement]) -> list[str]:
    lines = ["", "state store: embedded (in memory) vs Redis on loopback, same run"]
    embedded, shared = found.get("decide.embedded"), found.get("decide.redis")
    if embedded and shared and embedded.p50 and shared.p50 and embedded.p99 and shared.p99:
        lines.append(
            f"  decide, 100 offers, contact policy, profile id: embedded p50 {_time(embedded.p50)} "
            f"p99 {_time(embedded.p99)} | redis p50 {_time(shared.p50)} p99 {_time(shared.p99)} "
            f"| redis / embedded {shared.p50 / embedded.p50:.1f}x (p50)"
        )
    rates = [(k.split(".", 1)[1], m.rate) for k, m in found.items() if k.startswith("outcomes.")]
    if rates:
        lines.append("  outcomes/s: " + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates))
    return lines


@pytest.mark.benchmark(group="decide with a state store")
@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_decide_latency(
    benchmark: Any,
    record: Recorder,
    summary: dict[str, Measurement],
    stores: tuple[Engine, Engine, Engine],
    profiles_1m: npt.NDArray[np.float32],
    store: str,
) -> None:
    engine, shared, _ = stores
    decide_with = engine if store == "embedded" else shared
    calls = CALLS[store]
    rows = list(profiles_1m[:calls])
    ids = itertools.cycle(f"bench-{i}" for i in range(PROFILES))

    def decide(row: npt.NDArray[np.float32]) -> object:
        return decide_with.decide(HERO, row, profile_id=next(ids))

    p50, p99 = timed_loop(decide, rows, calls)
    cycle = itertools.cycle(rows)
    decision = benchmark.pedantic(lambda: decide(next(cycle)), rounds=200, iterations=1)
    assert decision.offers
    summary[f"decide.{store}"] = record(
        f"store.decide.{store}", 1, p50=p50, p99=p99, label=f"{calls:,} calls"
    )


@pytest.mark.benchmark(group="outcome ingestion")
@pytest.mark.parametrize("where", ["embedded", "redis, deciding server", "redis, another server"])
def test_outcome_ingestion(
    benchmark: Any,
    record: Recorder,
    summary: dict[str, Measurement],
    stores: tuple[Engine, Engine, Engine],
    profiles_1m: npt.NDArray[np.float32],
    where: str,
) -> None:
    engine, a, b = stores
    decider = engine if where == "embedded" else a
    reporter = {"embedded": engine, "redis, deciding server": a, "redis, another server": b}[where]
    rows = profiles_1m[:OUTCOMES]
    decided = [decider.decide(HERO, row, profile_id=f"outcome-{i}") for i, row in enumerate(rows)]
    ids = [d.decision_id for d in decided if d.offers]
    rewards = (np.arange(len(ids)) % 10 == 0).astype(float)

    def ingest() -> None:
        for decision_id, reward in zip(ids, rewards, strict=True):
            reporter.report_outcome(decision_id, float(reward))

    benchmark.pedantic(ingest, rounds=1, iterations=1)
    summary[f"outcomes.{where}"] = record(f"store.outcomes.{where}", len(ids), label=f"{len(ids):,} outcomes")
