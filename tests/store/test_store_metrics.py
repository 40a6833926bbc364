"""/metrics of a server over a real Redis store: `decision_engine_store_healthy{store="redis"}`
is 1, falls to 0 while Redis is down (decisions go on) and comes back by itself."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from decision_engine import Engine
from decision_engine.server import Metrics, create_server
from decision_engine.store import RedisStore, open_store
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.store.redis_server import RedisServer


@pytest.fixture
def store(catalog_file: Path) -> Iterator[RedisStore]:
    opened = open_store(Engine(catalog_file, seed=1))
    assert opened is not None
    try:
        yield opened
    finally:
        opened.close()


def store_healthy(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.labels["store"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "decision_engine_store_healthy"
    }


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_store_health_gauge_follows_redis(store: RedisStore, redis_server: RedisServer) -> None:
    metrics = Metrics()
    server, port = create_server("127.0.0.1:0", store.engine, metrics=metrics, store=store)
    server.start()
    http = metrics.serve_http("127.0.0.1", 0)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        request = pb.DecideRequest(profile=pb.Profile(id="p1", features=[30.0]), placements=["hero"])
        assert decisions.Decide(request, timeout=5).decisions[0].offers
        assert store_healthy(http.port) == {"redis": 1.0}
        redis_server.stop()
        assert decisions.Decide(request, timeout=5).decisions  # decisions go on, degraded
        wait_for(lambda: store_healthy(http.port) == {"redis": 0.0})
        redis_server.start()
        wait_for(lambda: store_healthy(http.port) == {"redis": 1.0})
    finally:
        channel.close()
        http.close()
        server.stop(None).wait(5)
