"""Trigger timers on the Redis store under `kill -9`: two `decision-engine serve` processes
share one redis-server; events tracked on A start timers due two seconds later, and A is
killed (then restarted) around their fire time, again and again, some of them leased to it,
some perhaps decided. A subscriber on B receives every timer's decision exactly once per
profile (each profile's one email), acknowledges it, and nothing fires twice."""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path

import grpc
import pytest
from decision_engine import Engine
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.durability.test_crash import Server
from tests.store.redis_server import RedisServer
from tests.triggers.conftest import BASE_YAML

pytestmark = [
    pytest.mark.serve,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

KILLS = 3
PER_ROUND = 30
TRIGGER = """\
triggers:
  - {id: cart_abandoned, event: cart_add, key: cart_id, delay: 2s, placement: email_cart}
"""
# A timer leased to a killed server fires once its lease (30 s) has run out.
DEADLINE = 90  # a bound for a loaded machine, not a timing claim


def track(server: Server, profiles: list[str]) -> None:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    events = []
    for profile in profiles:
        event = pb.Event(id=f"cart-{profile}", profile_id=profile, type="cart_add", time=stamp)
        event.properties["cart_id"].category = f"cart-{profile}"
        events.append(event)
    stub = decision_pb2_grpc.ProfileServiceStub(server.channel)
    response = stub.TrackEvents(iter([pb.TrackEventsRequest(events=events)]), timeout=30)
    assert (response.accepted, response.refused) == (len(profiles), 0), response


class Received:
    """A subscription on one server, acknowledging everything it receives."""

    def __init__(self, server: Server) -> None:
        self.triggers = decision_pb2_grpc.TriggerServiceStub(server.channel)
        self.call = self.triggers.SubscribeDecisions(
            pb.SubscribeDecisionsRequest(channel="email", max_in_flight=100), timeout=DEADLINE + 60
        )
        self.decisions: dict[str, set[int]] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                with self.lock:
                    self.decisions.setdefault(message.profile_id, set()).add(message.decision.decision_id)
                ack = pb.AckDecisionsRequest(decision_ids=[message.decision.decision_id])
                self.triggers.AckDecisions(ack, timeout=30)
        except grpc.RpcError:
            return  # cancelled at the end

    def profiles(self) -> int:
        with self.lock:
            return len(self.decisions)


def test_each_timer_fires_exactly_once_over_kills_of_a_server(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    store = f"store: {{type: redis, url: '{redis.url}', key_prefix: trigger-crash, timeout_ms: 500}}\n"
    path = tmp_path / "catalog.yaml"
    path.write_text(BASE_YAML + store + TRIGGER, encoding="utf-8")
    profiles = [f"p{i}" for i in range(KILLS * PER_ROUND)]
    setup = Engine(path)
    assert setup.upsert_profiles([{"id": p, "consents": ["email"]} for p in profiles]).accepted == len(
        profiles
    )
    setup.close()
    a, b = Server(path), Server(path)
    received = Received(b)
    rng = random.Random(7)
    try:
        for k in range(KILLS):
            track(a, profiles[k * PER_ROUND : (k + 1) * PER_ROUND])
            time.sleep(rng.uniform(1.8, 2.6))  # around the fire time: A may hold leases, or be deciding
            a.kill()
            a = Server(path)
        deadline = time.monotonic() + DEADLINE
        while received.profiles() < len(profiles) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # anything fired twice would arrive meanwhile
        with received.lock:
            decisions = dict(received.decisions)
        assert sorted(decisions) == sorted(profiles), f"{len(decisions)} of {len(profiles)} profiles"
        twice = {p: ids for p, ids in decisions.items() if len(ids) != 1}
        assert not twice, twice  # one decision per timer, delivered (at least) once
        check = Engine(path)
        try:
            assert (check.pending_timers, check.pending_deliveries) == (0, 0)
            for profile in profiles:
                outcomes = [e["outcome"] for e in check.trigger_history(profile)]
                assert outcomes.count("delivered") == 1, (profile, outcomes)
        finally:
            check.close()
    finally:
        received.call.cancel()
        for server in (a, b):
            if server.process.poll() is None:
                server.kill()
        redis.stop()
