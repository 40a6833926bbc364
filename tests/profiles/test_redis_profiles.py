"""The customer plane in Redis, through the Rust core: a real redis-server and a real
3-node Redis Cluster on loopback. Two engines pointed at one Redis are two servers sharing
profiles, events and computed attributes."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from decision_engine import Engine, LoadedCatalog
from decision_engine.errors import StorageError

from tests.profiles.conftest import at
from tests.store.redis_server import Cluster, RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


@pytest.fixture(params=["single", "cluster"])
def backend(request: pytest.FixtureRequest, single: RedisServer, cluster: Cluster) -> str:
    """A Redis url and, after '#', a key prefix of this test's own."""
    url = single.url if request.param == "single" else cluster.url
    return f"{url}#t{time.monotonic_ns()}"


def engines(catalog: LoadedCatalog, backend: str, n: int = 2) -> list[Engine]:
    url, prefix = backend.split("#")
    options = {"clock": "simulated", "profile_store": url, "profile_prefix": prefix}
    return [Engine(catalog, seed=i, **options) for i in range(n)]  # type: ignore[arg-type]


def cart_add(event_id: str, profile: str, value: float) -> dict[str, object]:
    return {
        "id": event_id,
        "profile_id": profile,
        "type": "cart_add",
        "time": at(0),
        "properties": {"value": value},
    }


def test_two_servers_share_profiles_events_and_computed_attributes(
    profile_catalog: LoadedCatalog, backend: str
) -> None:
    a, b = engines(profile_catalog, backend)
    rows = [{"id": "c1", "segment": "gold", "age": 41}, {"id": "c2", "age": "old"}]
    report = a.upsert_profiles(rows, now=at(0))
    assert (report.accepted, report.refused) == (1, 1)
    assert "takes a number" in report.rejected[0][2]
    events = [cart_add(f"e{i}", "c1", 9.5) for i in range(2)]
    assert b.track(events).accepted == 2
    assert a.track(events[:1]).duplicates == 1, "a repeated id is applied once, on whichever server"
    seen_by_a = a.profile("c1", now=at(1))
    assert seen_by_a is not None
    assert seen_by_a["features"]["segment"] == "gold"
    assert seen_by_a["features"]["cart_adds_7d"] == 2
    assert seen_by_a["features"]["last_cart_value"] == 9.5
    assert b.profile("c1", now=at(1)) == seen_by_a
    assert a.profile("c2", now=at(1)) is None, "nothing of the rejected row was written"
    decision = b.decide("hero", None, profile_id="c1", now=at(1), explain=True)
    assert decision.offers[0].offer_id in {"gold_offer", "cart_nudge"}
    assert a.profile_count is None


def test_concurrent_writers_lose_no_update(profile_catalog: LoadedCatalog, backend: str) -> None:
    writers = engines(profile_catalog, backend, n=4)
    per_writer = 40

    def write(w: int, engine: Engine) -> None:
        for i in range(per_writer):
            assert engine.track([cart_add(f"w{w}-{i}", "hot", 1.0)]).accepted == 1

    threads = [threading.Thread(target=write, args=(w, e)) for w, e in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    profile = writers[0].profile("hot", now=at(0))
    assert profile is not None
    assert profile["features"]["cart_adds_7d"] == 4 * per_writer


def test_every_key_has_a_lifetime_and_erasure_leaves_none(
    profile_catalog: LoadedCatalog, single: RedisServer
) -> None:
    prefix = f"ttl{time.monotonic_ns()}"
    (engine,) = engines(profile_catalog, f"{single.url}#{prefix}", n=1)
    engine.upsert_profiles([{"id": f"c{i}", "age": i} for i in range(20)], now=at(0))
    client = single.client()
    keys = list(client.scan_iter(f"{prefix}:*"))
    profile_keys = [k for k in keys if not k.startswith(f"{prefix}:layout:")]
    assert len(profile_keys) == 20
    # The catalog's default idle ttl (365 days) on every profile key.
    ttls = {client.pttl(k) for k in profile_keys}
    assert all(0 < t <= 365 * 86_400_000 for t in ttls), ttls
    for i in range(20):
        assert engine.delete_profile(f"c{i}")
    left = [k for k in client.scan_iter(f"{prefix}:*") if not k.startswith(f"{prefix}:layout:")]
    assert left == []
    assert engine.profile("c3", now=at(0)) is None
    # Layouts: one key per distinct schema, the only keys without a ttl.
    assert len(list(client.scan_iter(f"{prefix}:layout:*"))) == 1


def test_erasure_in_a_cluster_leaves_no_key(profile_catalog: LoadedCatalog, cluster: Cluster) -> None:
    prefix = f"erase{time.monotonic_ns()}"
    (engine,) = engines(profile_catalog, f"{cluster.url}#{prefix}", n=1)
    engine.upsert_profiles([{"id": f"c{i}", "age": i} for i in range(30)], now=at(0))
    client = cluster.client()
    keys = [k for k in client.scan_iter(f"{prefix}:*", target_nodes="all") if b":layout:" not in k]
    assert len(keys) == 30
    slots = {client.keyslot(k) for k in keys}
    assert len(slots) > 3, "profiles spread over the cluster's slots"
    for i in range(30):
        engine.delete_profile(f"c{i}")
    assert [k for k in client.scan_iter(f"{prefix}:*", target_nodes="all") if b":layout:" not in k] == []


def test_a_redis_outage_is_a_storage_error_and_the_engine_recovers(
    profile_catalog: LoadedCatalog, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        (engine,) = engines(profile_catalog, f"{server.url}#outage", n=1)
        assert engine.upsert_profiles([{"id": "c1", "age": 30}], now=at(0)).accepted == 1
        server.stop()
        started = time.monotonic()
        with pytest.raises(StorageError, match="redis"):
            engine.upsert_profiles([{"id": "c1", "age": 31}], now=at(0))
        with pytest.raises(StorageError):
            engine.decide("hero", None, profile_id="c1", now=at(0))
        assert time.monotonic() - started < 20, "an outage fails fast, it does not hang"
        server.start()
        assert engine.upsert_profiles([{"id": "c2", "age": 31}], now=at(0)).accepted == 1
    finally:
        server.stop()
    with pytest.raises(StorageError):
        Engine(profile_catalog, clock="simulated", profile_store=server.url)
