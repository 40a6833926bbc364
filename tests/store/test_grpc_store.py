"""Two `decision-engine serve --store redis://...` processes on loopback sharing one Redis:
caps hold exactly over gRPC, an outcome goes to either server, and the health service
reports the store degraded while Redis is down, then serving again by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.store.redis_server import RedisServer

pytestmark = pytest.mark.serve

CLI = [sys.executable, "-c", "import sys; from decision_engine.cli import main; sys.exit(main())"]
PROFILES = [f"g{i}" for i in range(8)]


class Served:
    """A server process; its port is read from its "serving" log line."""

    def __init__(self, catalog: Path, url: str, seed: int) -> None:
        args = ["serve", "--catalog", str(catalog), "--address", "127.0.0.1:0", "--no-metrics"]
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

    def store_status(self) -> int:
        request = health_pb2.HealthCheckRequest(service="decision_engine.v1.Store")
        return int(self.health.Check(request, timeout=5).status)

    def stop(self) -> None:
        if hasattr(self, "channel"):
            self.channel.close()
        self.process.terminate()
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


def _wait_status(served: Served, status: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while served.store_status() != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_two_servers_share_caps_outcomes_and_health(
    servers: tuple[Served, Served], redis_server: RedisServer
) -> None:
    a, b = servers
    serving = health_pb2.HealthCheckResponse.SERVING
    assert a.store_status() == serving and b.store_status() == serving
    requests = [(s, p) for p in PROFILES for s in (a, b) for _ in range(4)]  # 8 requests per profile
    with ThreadPoolExecutor(4) as pool:
        decided = list(pool.map(lambda sp: (sp[0], sp[1], sp[0].decide("hero", sp[1])), requests))
    shown = Counter(profile for _, profile, d in decided for _ in d.offers)
    assert shown == dict.fromkeys(PROFILES, 3), "the web cap of 3, exactly, across both servers"

    by_a = next(d for served, _, d in decided if served is a and d.offers)
    outcome = pb.ReportOutcomeRequest(decision_id=by_a.decision_id, reward=1.0)
    b.decisions.ReportOutcome(outcome, timeout=5)  # the other server takes it
    with pytest.raises(grpc.RpcError) as again:
        a.decisions.ReportOutcome(outcome, timeout=5)
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS

    redis_server.stop()
    assert a.decide("hero", "during-outage").offers, "decisions go on"
    assert _wait_status(a, health_pb2.HealthCheckResponse.NOT_SERVING, 5)
    overall = a.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    assert overall == serving, "the server itself stays SERVING"
    redis_server.start()
    assert _wait_status(a, serving, 5) and _wait_status(b, serving, 5)
