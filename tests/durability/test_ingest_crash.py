"""The customer plane under `kill -9`: a server is killed again and again while profiles and
events stream in; after every restart each acknowledged write is there, exactly once."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import grpc
import pytest
from decision_engine import Engine, load_catalog
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc

from tests.durability.test_crash import Server
from tests.profiles.conftest import PROFILE_YAML

KILLS = 4
CARTS = 20  # profiles the events go to


class Writer:
    """Upserts a new profile, then tracks a cart_add for one of CARTS profiles, as fast as the
    server answers; remembers what was acknowledged, until the server dies."""

    def __init__(self, channel: grpc.Channel, start: int) -> None:
        self.stub = decision_pb2_grpc.ProfileServiceStub(channel)
        self.next = start
        self.profiles: list[int] = []
        self.events: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                n = self.next
                self.next += 1
                upsert = pb.ProfileUpsert(id=f"p{n}", features={"age": pb.FeatureValue(number=n % 90)})
                reply = self.stub.UpsertProfiles(pb.UpsertProfilesRequest(profiles=[upsert]), timeout=10)
                assert reply.accepted == 1, reply
                self.profiles.append(n)
                event = pb.Event(id=f"e{n}", profile_id=f"cart{n % CARTS}", type="cart_add")
                event.time.GetCurrentTime()
                event.properties["value"].number = 1.0
                tracked = self.stub.TrackEvents(iter([pb.TrackEventsRequest(events=[event])]), timeout=10)
                assert tracked.accepted == 1, tracked
                self.events.append(n)
        except grpc.RpcError:
            return  # the server was killed


@pytest.mark.parametrize("fsync", ["never", "interval"])
def test_no_acknowledged_write_is_lost_over_many_kills(tmp_path: Path, fsync: str) -> None:
    catalog_path = tmp_path / "catalog.yaml"
    store = f"store: {{type: embedded, path: state, fsync: {fsync}, snapshot_every: 500}}\n"
    catalog_path.write_text(PROFILE_YAML + store, encoding="utf-8")
    catalog = load_catalog(catalog_path)
    profiles: list[int] = []
    events: list[int] = []
    rng = random.Random(5)
    for kill in range(KILLS):
        server = Server(catalog_path)
        try:
            writer = Writer(server.channel, start=kill * 1_000_000)
            time.sleep(rng.uniform(0.5, 1.2))
        finally:
            server.kill()
        writer.thread.join(10)
        profiles += writer.profiles
        events += writer.events
        engine = Engine(catalog, state_dir=tmp_path / "state")
        missing = [n for n in profiles if engine.profile(f"p{n}") is None]
        assert missing == [], (kill, len(missing), len(profiles))
        assert all(engine.profile(f"p{n}")["features"]["age"] == n % 90 for n in profiles[-50:])  # type: ignore[index]
        carts = sum(
            int(engine.profile(f"cart{c}")["features"]["cart_adds_7d"])  # type: ignore[index]
            for c in range(CARTS)
            if engine.profile(f"cart{c}") is not None
        )
        # Every acknowledged event counted once; at most one on the wire per kill extra.
        assert len(events) <= carts <= len(events) + kill + 1, (kill, len(events), carts)
        del engine
    assert len(profiles) > 50 * KILLS and len(events) > 50 * KILLS, (len(profiles), len(events))
