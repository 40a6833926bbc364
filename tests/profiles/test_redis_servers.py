"""Two gRPC servers over one real redis-server, their engines keeping their state, profiles
included, in Redis (the catalog's `store: {type: redis}`): the customer data platform writes to
one, channels decide by id on the other."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from decision_engine import Engine, parse_catalog
from decision_engine.server import create_server
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc

from tests.profiles.conftest import PROFILE_YAML
from tests.store.redis_server import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[grpc.Channel, grpc.Channel, RedisServer]]:
    redis = RedisServer(tmp_path)
    redis.start()
    yaml = (
        PROFILE_YAML + f"store:\n  type: redis\n  url: {redis.url}\n  key_prefix: two{time.monotonic_ns()}\n"
    )
    catalog = parse_catalog(yaml, "shared.yaml")
    stops, channels = [], []
    try:
        for worker in range(2):
            engine = Engine(catalog, seed=worker, clock="simulated")
            server, port = create_server("127.0.0.1:0", engine, worker=worker)
            server.start()
            stops.append((server, engine))
            channels.append(grpc.insecure_channel(f"127.0.0.1:{port}"))
        yield channels[0], channels[1], redis
    finally:
        for channel in channels:
            channel.close()
        for server, engine in stops:
            server.stop(None).wait(5)
            engine.close()
        redis.stop()


def _stamp(seconds: float) -> pb.google_dot_protobuf_dot_timestamp__pb2.Timestamp:  # type: ignore[name-defined]
    stamp = pb.DecideRequest().now
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def test_written_on_one_server_decided_by_id_on_the_other(
    two_servers: tuple[grpc.Channel, grpc.Channel, RedisServer],
) -> None:
    a, b, _ = two_servers
    now = 1_767_225_600.0
    profiles_a = decision_pb2_grpc.ProfileServiceStub(a)
    upsert = pb.UpsertProfilesRequest(
        profiles=[
            pb.ProfileUpsert(id="c1", features={"segment": pb.FeatureValue(category="basic")}),
            pb.ProfileUpsert(id="c2", features={"segment": pb.FeatureValue(category="platinum")}),
        ]
    )
    written = profiles_a.UpsertProfiles(upsert, timeout=10)
    assert (written.accepted, written.refused) == (1, 1)
    assert "platinum" in written.rejected[0].message
    cart = [
        pb.Event(
            id=f"e{i}",
            profile_id="c1",
            type="cart_add",
            time=_stamp(now),
            properties={"value": pb.FeatureValue(number=4)},
        )
        for i in range(3)
    ]
    tracked = profiles_a.TrackEvents(iter([pb.TrackEventsRequest(events=cart)]), timeout=10)
    assert tracked.accepted == 3

    # Server B sees what A wrote: the computed attribute, and a decision by id on it.
    stored = decision_pb2_grpc.ProfileServiceStub(b).GetProfile(
        pb.GetProfileRequest(id="c1", now=_stamp(now)), timeout=10
    )
    assert stored.features["cart_adds_7d"].number == 3
    decide = pb.DecideRequest(profile=pb.Profile(id="c1"), placements=["hero"], explain=True, now=_stamp(now))
    decision = decision_pb2_grpc.DecisionServiceStub(b).Decide(decide, timeout=10).decisions[0]
    # Three cart adds make cart_nudge eligible (its rule reads the computed attribute).
    chosen = decision.offers[0].offer_id
    assert chosen == "cart_nudge" or decision.reasons["cart_nudge"].startswith("outranked"), decision
    assert "rule" in decision.reasons["gold_offer"], decision

    # Context in the request overrides the stored value for that decision only.
    gold = pb.DecideRequest(
        profile=pb.Profile(id="c1", named_features={"segment": pb.FeatureValue(category="gold")}),
        placements=["hero"],
        explain=True,
        now=_stamp(now + 1),
    )
    decided = decision_pb2_grpc.DecisionServiceStub(b).Decide(gold, timeout=10).decisions[0]
    gold_chosen = decided.offers[0].offer_id == "gold_offer"
    assert gold_chosen or decided.reasons["gold_offer"].startswith("outranked"), decided
    again = decision_pb2_grpc.ProfileServiceStub(a).GetProfile(
        pb.GetProfileRequest(id="c1", now=_stamp(now)), timeout=10
    )
    assert again.features["segment"].category == "basic"

    # A never-seen id is NOT_FOUND on either server; erasure on B is seen by A.
    with pytest.raises(grpc.RpcError) as info:
        decision_pb2_grpc.DecisionServiceStub(a).Decide(
            pb.DecideRequest(profile=pb.Profile(id="nobody"), placements=["hero"], now=_stamp(now)),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert (
        decision_pb2_grpc.ProfileServiceStub(b)
        .DeleteProfile(pb.DeleteProfileRequest(id="c1"), timeout=10)
        .found
    )
    with pytest.raises(grpc.RpcError) as gone:
        profiles_a.GetProfile(pb.GetProfileRequest(id="c1", now=_stamp(now)), timeout=10)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
