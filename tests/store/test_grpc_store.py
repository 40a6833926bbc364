"""`decision-engine serve --store redis://...` processes on loopback sharing one Redis (and
`--store redis+cluster://...` on a real 3-node cluster): caps hold exactly over gRPC, an
outcome goes to either server, once, and survives `kill -9` of the server that took it; the
health service reports the store degraded while Redis is down (outcomes UNAVAILABLE,
decisions going on), then serving again by itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import admin_pb2_grpc, decision_pb2_grpc
from decision_engine.v1 import decision_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.store.conftest import catalog_yaml
from tests.store.polling import wait_for
from tests.store.redis_server import Cluster, RedisServer

pytestmark = pytest.mark.serve

CLI = [sys.executable, "-c", "import sys; from decision_engine.cli import main; sys.exit(main())"]
PROFILES = [f"g{i}" for i in range(8)]
ADMIN_TOKEN = "admin-token-for-tests"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Served:
    """A server process; its port is read from its "serving" log line."""

    def __init__(self, catalog: Path, url: str, seed: int) -> None:
        args = ["serve", "--catalog", str(catalog), "--address", "127.0.0.1:0", "--no-metrics"]
        args += ["--admin-token", ADMIN_TOKEN]
        self.process = subprocess.Popen(
            [*CLI, *args, "--store", url, "--seed", str(seed)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.port = 0
        self.lines: list[dict[str, Any]] = []
        ready = threading.Event()
        self.reader = threading.Thread(target=self._read, args=(ready,), daemon=True)
        self.reader.start()
        if not ready.wait(30):
            self.stop()
            raise AssertionError(f"server did not start: {self.lines}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.decisions = decision_pb2_grpc.DecisionServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def _read(self, ready: threading.Event) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = {"message": line.rstrip()}
            self.lines.append(entry)
            if entry.get("message") == "serving":
                self.port = int(entry["port"])
                ready.set()

    def decide(self, placement: str, profile: str) -> pb.Decision:
        request = pb.DecideRequest(placements=[placement], profile=pb.Profile(id=profile, features=[30.0]))
        response: pb.DecideResponse = self.decisions.Decide(request, timeout=10)
        return response.decisions[0]

    @property
    def server_number(self) -> int:
        shared = next(entry for entry in self.lines if entry.get("message") == "sharing state through redis")
        return int(shared["server"])

    def conversions(self, placement: str, offer: str) -> float:
        """What the policy learned of `offer`: its Beta posterior's successes."""
        request = admin.GetPolicyStateRequest(placements=[placement])
        metadata = [("authorization", f"Bearer {ADMIN_TOKEN}")]
        state = self.admin.GetPolicyState(request, timeout=5, metadata=metadata).placements[0]
        return next(arm.alpha - 1.0 for arm in state.arms if arm.offer_id == offer)

    def store_status(self) -> int:
        request = health_pb2.HealthCheckRequest(service="decision_engine.v1.Store")
        return int(self.health.Check(request, timeout=5).status)

    def report(self, decision_id: int, reward: float = 1.0) -> None:
        request = pb.ReportOutcomeRequest(decision_id=decision_id, reward=reward)
        self.decisions.ReportOutcome(request, timeout=5)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if hasattr(self, "channel"):
            self.channel.close()
        self.process.send_signal(signum)
        self.process.wait(15)
        self.reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def servers(catalog_file: Path, redis_server: RedisServer) -> Iterator[tuple[Served, Served]]:
    started: list[Served] = []
    try:
        for seed in (1, 2):
            started.append(Served(catalog_file, redis_server.url, seed))
        yield started[0], started[1]
    finally:
        for served in started:
            served.stop()


def _status(served: Served, status: int) -> Callable[[], bool]:
    return lambda: served.store_status() == status


def _share_the_web_cap(a: Served, b: Served) -> list[tuple[Served, str, pb.Decision]]:
    requests = [(s, p) for p in PROFILES for s in (a, b) for _ in range(4)]  # 8 requests per profile
    with ThreadPoolExecutor(4) as pool:
        decided = list(pool.map(lambda sp: (sp[0], sp[1], sp[0].decide("hero", sp[1])), requests))
    shown = Counter(profile for _, profile, d in decided for _ in d.offers)
    assert shown == dict.fromkeys(PROFILES, 3), "the web cap of 3, exactly, across both servers"
    return decided


def test_two_servers_share_caps_outcomes_and_health(
    servers: tuple[Served, Served], redis_server: RedisServer
) -> None:
    a, b = servers
    assert a.store_status() == SERVING and b.store_status() == SERVING
    assert a.server_number != b.server_number
    decided = _share_the_web_cap(a, b)
    for served, _, d in decided:
        assert d.decision_id >> 40 == served.server_number, "ids pass through, untagged"

    by_a = next(d for served, _, d in decided if served is a and d.offers)
    b.report(by_a.decision_id)  # the other server takes it
    with pytest.raises(grpc.RpcError) as again:
        a.report(by_a.decision_id)
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    offer = by_a.offers[0].offer_id
    assert wait_for(lambda: a.conversions("hero", offer) == b.conversions("hero", offer) == 1, 5)

    redis_server.stop()
    during = a.decide("hero", "during-outage")
    assert during.offers, "decisions go on"
    assert wait_for(_status(a, NOT_SERVING), 5)
    overall = a.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    assert overall == SERVING, "the server itself stays SERVING"
    with pytest.raises(grpc.RpcError) as unavailable:
        a.report(during.decision_id)
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE, "to be reported again later"
    redis_server.start()
    assert wait_for(_status(a, SERVING), 5) and wait_for(_status(b, SERVING), 5)
    b.report(during.decision_id)  # the decision made during the outage is in Redis now


def test_an_acknowledged_outcome_survives_kill_9_of_the_server_that_took_it(
    catalog_file: Path, redis_server: RedisServer
) -> None:
    a = Served(catalog_file, redis_server.url, 1)
    try:
        decisions = [a.decide("banner", f"k{i}") for i in range(5)]
        assert all(d.offers[0].offer_id == "loan" for d in decisions)
        for d in decisions:
            a.report(d.decision_id)
    finally:
        a.stop(signal.SIGKILL)  # at once: no last snapshot
    restarted = Served(catalog_file, redis_server.url, 1)
    try:
        assert restarted.conversions("banner", "loan") == 5
        with pytest.raises(grpc.RpcError) as refused:
            restarted.report(decisions[0].decision_id)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    finally:
        restarted.stop()


def test_two_servers_on_a_redis_cluster_share_caps_and_outcomes(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    started: list[Served] = []
    try:
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(catalog_yaml("redis://127.0.0.1:1/0", "cl"), encoding="utf-8")
        for seed in (1, 2):  # --store overrides the catalog's url
            started.append(Served(catalog, cluster.url, seed))
        a, b = started
        assert a.store_status() == SERVING
        decided = _share_the_web_cap(a, b)
        by_b = next(d for served, _, d in decided if served is b and d.offers)
        a.report(by_b.decision_id)
        offer = by_b.offers[0].offer_id
        assert wait_for(lambda: a.conversions("hero", offer) == b.conversions("hero", offer) == 1, 5)
        loans_on_hero = sum(1 for _, _, d in decided for o in d.offers if o.offer_id == "loan")
        banners = [served.decide("banner", "") for served in (a, b) * 15]  # no profile: the budget alone
        assert sum(len(d.offers) for d in banners) == 25 - loans_on_hero, "one budget of 25 a day"
    finally:
        for served in started:
            served.stop()
        cluster.stop()
