"""A server over the Redis store (a real redis-server) whose engine keeps profiles in its own
memory answers ProfileService with FAILED_PRECONDITION (see test_redis_servers for the
shared case)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from decision_engine import Engine
from decision_engine.server import create_server
from decision_engine.store import open_store
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc

from tests.store.conftest import catalog_yaml
from tests.store.redis_server import RedisServer


def test_profile_service_needs_the_embedded_store(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(catalog_yaml(redis.url), encoding="utf-8")
        engine = Engine(catalog, clock="simulated")
        store = open_store(engine)
        assert store is not None
        server, port = create_server("127.0.0.1:0", engine, store=store)
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = decision_pb2_grpc.ProfileServiceStub(channel)
                calls = [
                    lambda: stub.UpsertProfiles(pb.UpsertProfilesRequest(), timeout=10),
                    lambda: stub.UpsertProfileStream(iter([pb.UpsertProfilesRequest()]), timeout=10),
                    lambda: stub.TrackEvents(iter([pb.TrackEventsRequest()]), timeout=10),
                    lambda: stub.GetProfile(pb.GetProfileRequest(id="a"), timeout=10),
                    lambda: stub.DeleteProfile(pb.DeleteProfileRequest(id="a"), timeout=10),
                ]
                for call in calls:
                    with pytest.raises(grpc.RpcError) as info:
                        call()
                    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                    assert "profile_store" in (info.value.details() or "")
                # the DecisionService goes on
                ping = decision_pb2_grpc.DecisionServiceStub(channel).Ping(pb.PingRequest(), timeout=10)
                assert ping == pb.PingResponse()
        finally:
            server.stop(None).wait(5)
            store.close()
    finally:
        redis.stop()
