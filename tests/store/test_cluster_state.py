"""The whole decision state on a real 3-node Redis Cluster, shared by engines in this process
(each one a server of it): caps and budgets hold exactly across them, any of them settles any
decision's outcome once and every one learns it, a release gives its budget unit back, and
erasing a profile leaves no key of it on any node."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from decision_engine import Decision, Engine, parse_catalog
from decision_engine.errors import OutcomeAlreadyReportedError

from tests.clock import NOW_SECONDS
from tests.store.redis_server import Cluster

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

# `hero` (web) is capped at 3 contacts per profile per day; `banner` (app) shows only `loan`,
# whose budget is 25 impressions per day for everyone, first come first served.
CATALOG = """\
version: 1
features:
  - {name: age, type: int, default: 30}
channels: [web, app]
placements:
  - {id: hero, channel: web, slots: 1, policy: {type: thompson}}
  - {id: banner, channel: app, slots: 1, policy: {type: thompson}}
offers:
  - {id: gold_card, placements: [hero]}
  - {id: savings, placements: [hero]}
  - {id: loan, placements: [banner], budget: {max: 25, window: 1d, pacing: none}}
contact_policy:
  caps:
    - {scope: channel, channel: web, max: 3, window: 1d}
profiles:
  unknown: not_found
"""
WEB_CAP = 3
LOAN_BUDGET = 25
AGE = [30.0]


class Servers:
    """Engines sharing the cluster under a key prefix of one test's own."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.prefix = f"t{time.monotonic_ns()}"
        store = f"store: {{type: redis, url: '{cluster.url}', key_prefix: {self.prefix}}}\n"
        self.catalog = parse_catalog(CATALOG + store, "cluster.yaml")
        self.engines: list[Engine] = []

    def start(self) -> Engine:
        engine = Engine(self.catalog, seed=len(self.engines), clock="simulated")
        self.engines.append(engine)
        return engine

    def node_keys(self) -> dict[int, list[str]]:
        """This test's keys on each node (port), from a SCAN of every node."""
        found = {}
        for port in self.cluster.ports:
            node = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
            try:
                found[port] = sorted(node.scan_iter(match=f"{self.prefix}:*", count=1000))
            finally:
                node.close()
        return found

    def keys(self, containing: str = "") -> list[str]:
        return sorted(k for keys in self.node_keys().values() for k in keys if containing in k)

    def nodes_holding(self, containing: str) -> set[int]:
        return {port for port, keys in self.node_keys().items() if any(containing in k for k in keys)}

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def servers(cluster: Cluster) -> Iterator[Servers]:
    shared = Servers(cluster)
    try:
        yield shared
    finally:
        shared.close()


def _shown(decision: Decision) -> int:
    return len(decision.offers)


def test_a_channel_cap_holds_for_decisions_alternating_between_servers(servers: Servers) -> None:
    a, b = servers.start(), servers.start()
    shown = []
    for i in range(2 * WEB_CAP + 2):
        engine = (a, b)[i % 2]
        shown.append(_shown(engine.decide("hero", AGE, profile_id="alternating", now=NOW_SECONDS + i)))
    # The first three decisions show, on whichever server; none after them does.
    assert shown == [1] * WEB_CAP + [0] * (WEB_CAP + 2), shown
    assert len(a.contact_history("alternating")) == len(b.contact_history("alternating")) == WEB_CAP
    assert a.store_health()["server"] != b.store_health()["server"]  # type: ignore[index]


def test_a_channel_cap_holds_for_concurrent_decisions_on_two_servers(servers: Servers) -> None:
    a, b = servers.start(), servers.start()
    counts: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def decide(engine: Engine, worker: int) -> None:
        start.wait(timeout=10)
        mine = 0
        for i in range(5):
            mine += _shown(
                engine.decide("hero", AGE, profile_id="contended", now=NOW_SECONDS + worker * 10 + i)
            )
        with lock:
            counts.append(mine)

    threads = [threading.Thread(target=decide, args=((a, b)[w % 2], w)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(counts) == 8, "a deciding thread did not finish"
    assert sum(counts) == WEB_CAP, counts  # 40 decisions for one profile, 3 shown in all
    assert len(a.contact_history("contended")) == WEB_CAP


def test_a_budget_is_spent_exactly_once_across_servers(servers: Servers) -> None:
    a, b = servers.start(), servers.start()
    granted: list[int] = []
    lock = threading.Lock()

    def decide(engine: Engine, worker: int) -> None:
        mine = 0
        for i in range(10):
            mine += _shown(engine.decide("banner", AGE, profile_id=f"w{worker}-{i}", now=NOW_SECONDS + i))
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=decide, args=((a, b)[w % 2], w)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(granted) == 4, "a deciding thread did not finish"
    assert sum(granted) == LOAN_BUDGET, granted  # 40 asked, 25 granted between the two
    assert min(granted) > 0, granted  # both servers took part
    # A server started afterwards reads the spent budget from the cluster.
    late = servers.start()
    assert sum(_shown(late.decide("banner", AGE, now=NOW_SECONDS + 20 + i)) for i in range(5)) == 0
    (counter,) = servers.keys("{b:loan}")
    node = redis.RedisCluster(host="127.0.0.1", port=servers.cluster.ports[0], decode_responses=True)
    try:
        assert node.get(counter) == str(LOAN_BUDGET)
    finally:
        node.close()


def test_budget_usage_reports_the_shared_counter(servers: Servers) -> None:
    a, b = servers.start(), servers.start()
    granted = sum(_shown(a.decide("banner", AGE, now=NOW_SECONDS + i)) for i in range(3))
    assert granted == 3
    assert b.budget_usage("loan", now=NOW_SECONDS + 3) == (3, LOAN_BUDGET)


def test_an_outcome_reported_on_the_other_server_is_settled_once_and_learned_by_both(
    servers: Servers,
) -> None:
    a, b = servers.start(), servers.start()
    decision = a.decide("banner", AGE, profile_id="reader", now=NOW_SECONDS)
    assert [o.offer_id for o in decision.offers] == ["loan"]
    b.report_outcome(decision.decision_id, 1.0)
    for engine, reward in ((a, 1.0), (b, 0.0), (a, 0.0)):
        with pytest.raises(OutcomeAlreadyReportedError):
            engine.report_outcome(decision.decision_id, reward)
    for engine in (a, b):
        engine.sync_store()  # whatever the background round left, learned now
        (loan,) = engine.policy_state("banner")
        assert (loan.pulls, loan.alpha, loan.beta) == (1.0, 2.0, 1.0), (engine.store_health(), loan)
        assert engine.store_health()["learned"] == 1  # type: ignore[index]


def test_a_release_on_the_other_server_gives_the_budget_unit_back(servers: Servers) -> None:
    a, b = servers.start(), servers.start()
    decisions = [a.decide("banner", AGE, now=NOW_SECONDS + i) for i in range(LOAN_BUDGET + 1)]
    shown = [d for d in decisions if d.offers]
    assert len(shown) == LOAN_BUDGET  # the last one found the budget spent
    b.release(shown[0].decision_id)
    with pytest.raises(OutcomeAlreadyReportedError):
        a.release(shown[0].decision_id)
    with pytest.raises(OutcomeAlreadyReportedError):
        a.report_outcome(shown[0].decision_id, 1.0)
    # Exactly one unit came back: one more decision shows, the next does not.
    again = [_shown(b.decide("banner", AGE, now=NOW_SECONDS + 30 + i)) for i in range(2)]
    assert again == [1, 0]


def test_deleting_a_profile_leaves_no_key_of_it_on_any_node(servers: Servers) -> None:
    a, b = servers.start(), servers.start()
    for profile in ("erased", "kept"):
        assert a.upsert_profiles([{"id": profile, "age": 41}], now=NOW_SECONDS).accepted == 1
    decided = []
    for i, engine in enumerate((a, b, a)):
        for profile in ("erased", "kept"):
            decided += [
                (profile, d)
                for d in engine.decide_page(["hero", "banner"], None, profile_id=profile, now=NOW_SECONDS + i)
            ]
    erased_ids = [d.decision_id for p, d in decided if p == "erased" and d.offers]
    kept_ids = [d.decision_id for p, d in decided if p == "kept" and d.offers]
    assert len(erased_ids) == len(kept_ids) == 6
    b.report_outcome(erased_ids[0], 1.0)  # a conversion: a cooldown in the history too
    # Before: the profile, its history and its pending-decision index, and its decisions.
    assert servers.keys("{erased}") == [f"{servers.prefix}:{{erased}}:{k}" for k in ("ds", "h", "p")]
    pending = [k for k in servers.keys(":d:") if int(k.rsplit(":", 1)[1]) in erased_ids]
    assert len(pending) == len(erased_ids)
    assert len(servers.nodes_holding(":d:")) > 1  # the decisions are spread over the nodes

    assert b.delete_profile("erased")
    assert servers.keys("{erased}") == []
    assert [k for k in servers.keys(":d:") if int(k.rsplit(":", 1)[1]) in erased_ids] == []
    assert a.profile("erased", now=NOW_SECONDS) is None
    assert a.contact_history("erased") == []
    # Another profile's keys and decisions are untouched.
    assert len(servers.keys("{kept}")) == 3
    assert len([k for k in servers.keys(":d:") if int(k.rsplit(":", 1)[1]) in kept_ids]) == len(kept_ids)
    assert not b.delete_profile("erased")
