"""/metrics of a server over a real Redis store: `decision_engine_store_healthy{store="redis"}`
is 1, falls to 0 while Redis is down (decisions go on) and comes back by itself."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from decision_engine import Engine
from decision_engine.server import Metrics, create_server
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.store.polling import wait_for
from tests.store.redis_server import RedisServer


@pytest.fixture
def engine(catalog_file: Path) -> Iterator[Engine]:
    opened = Engine(catalog_file, seed=1)
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


def test_store_health_gauge_follows_redis(engine: Engine, redis_server: RedisServer) -> None:
    metrics = Metrics()
    server, port = create_server("127.0.0.1:0", engine, metrics=metrics)
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
        assert wait_for(lambda: store_healthy(http.port) == {"redis": 0.0}, 10)
        redis_server.start()
        assert wait_for(lambda: store_healthy(http.port) == {"redis": 1.0}, 10)
    finally:
        channel.close()
        http.close()
        server.stop(None).wait(5)
