"""The customer plane over Redis (issue 16): one real redis-server on 127.0.0.1, two servers in
processes of their own (catalog_server.py, worker 0 and 1) whose catalog has a Redis `store:`,
so both keep their state, profiles included, in Redis as `decision-engine serve` does. The catalog: 32 stored
features (31 numbers and a category) and `visits_7d` computed from visit events.

- freshness: an event acknowledged by TrackEvents on server A, then GetProfile on server B
  until its `visits_7d` counts it (a fresh profile each time: 1), timed from the send on A to
  B's answer; p50 and p95, and how many reads on B it took;
- Decide by id beside Decide with the same features in the request, both on server B,
  interleaved call by call with a Ping (an empty RPC: the client's and gRPC's floor); p50
  each and their ratio;
- a profile read: `Engine.profile` of an engine in this process on the same Redis store
  (the Rust store's read, computed attributes evaluated) beside redis-py HGETALL of a
  32-field hash holding the same profile's stored features, as a feature store keeps them
  (the floor of a Feast-style online read: no decoding); p50 each and their ratio.

    python -m pytest benches/test_freshness.py --benchmark-only
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from bench_grpc import Server
from decision_engine import Engine
from decision_engine.catalog import load_catalog
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from results import Recorder

from tests.store.redis_server import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

NUMBERS = 31
SEGMENTS = ["basic", "silver", "gold", "platinum"]
PROFILES = 6_000  # stored profiles: the first FRESH_EVENTS + WARMUP get visits, the last are read
FRESH_EVENTS = 400
DECIDE_CALLS = 2_000  # per mode
READ_CALLS = 5_000  # per mode
COUNTED_CALLS = 500  # decides per mode whose Redis commands are counted
WARMUP = 200
PREFIX = "bench"
WAIT = 10.0  # seconds a call or a freshness read may take: a bound for a loaded machine


def catalog_yaml(url: str) -> str:
    numbers = "".join(f"  - {{name: f{j:02d}, type: float, default: 0}}\n" for j in range(NUMBERS))
    offers = "".join(
        f"  - {{id: o{k:02d}, placements: [hero], value: {1 + k % 3}, rule: 'f{k:02d} > 0.3'}}\n"
        for k in range(20)
    )
    return (
        "version: 1\nfeatures:\n"
        + numbers
        + f"  - {{name: segment, type: category, values: [{', '.join(SEGMENTS)}], default: basic}}\n"
        "  - {name: visits_7d, type: int, computed: {event: visit, aggregate: count, window: 7d}}\n"
        "channels: [web]\nplacements:\n  - {id: hero, channel: web}\noffers:\n"
        + offers
        + "  - {id: fallback, placements: [hero], weight: 0.5}\n"
        "profiles:\n  unknown: not_found\n"
        f"store:\n  type: redis\n  url: {url}\n  key_prefix: {PREFIX}\n"
    )


@dataclass
class Plane:
    redis: RedisServer
    a: Server
    b: Server
    local: Engine  # this process's engine on the same Redis store
    ids: list[str]
    vectors: npt.NDArray[np.float32]  # (PROFILES, features) as a Decide with features sends them


def _server(catalog: Path, worker: int) -> tuple[subprocess.Popen[str], Server]:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("catalog_server.py")), str(catalog), str(worker)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, Server(int(process.stdout.readline()), process.pid)


def _stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    process.wait(30)
    process.stdout.close()


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    directory = tmp_path_factory.mktemp("freshness")
    redis = RedisServer(directory)
    redis.start()
    processes: list[subprocess.Popen[str]] = []
    try:
        path = directory / "catalog.yaml"
        path.write_text(catalog_yaml(redis.url), encoding="utf-8")
        catalog = load_catalog(path)
        local = Engine(catalog, seed=9)
        ids = [f"q{i}" for i in range(PROFILES)]
        stored = np.random.default_rng(5).random((PROFILES, NUMBERS + 1))
        stored[:, NUMBERS] = np.floor(stored[:, NUMBERS] * len(SEGMENTS))  # the category's index
        assert local.upsert_profiles(ids=ids, features=stored).accepted == PROFILES
        vectors = np.zeros((PROFILES, len(local.feature_names)), dtype=np.float32)
        vectors[:, : NUMBERS + 1] = stored  # visits_7d: 0, as stored profiles without visits have
        servers = []
        for worker in (0, 1):
            process, server = _server(path, worker)
            processes.append(process)
            servers.append(server)
        yield Plane(redis, servers[0], servers[1], local, ids, vectors)
        local.close()
    finally:
        for process in processes:
            _stop(process)
        redis.stop()


def p50_p95(durations_ns: npt.NDArray[np.int64]) -> tuple[float, float]:
    p50, p95 = np.percentile(durations_ns, [50, 95])
    return float(p50) * 1e-9, float(p95) * 1e-9


def _interleaved(calls: dict[str, Callable[[int], object]], n: int) -> dict[str, npt.NDArray[np.int64]]:
    """Each call on i, in turn (the order rotating with i), each timed on its own (ns)."""
    names = list(calls)
    for i in range(WARMUP):
        for name in names:
            calls[name](i)
    durations = {name: np.empty(n, dtype=np.int64) for name in names}
    for i in range(n):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            start = time.perf_counter_ns()
            calls[name](WARMUP + i)
            durations[name][i] = time.perf_counter_ns() - start
    return durations


# --- freshness: TrackEvents on A, seen on B ---------------------------------------------------


def _stamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def _freshness(plane: Plane, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[int]]:
    """(send on A -> B's answer that counts the visit, send on A -> A's ack, reads on B) per event."""
    seen = np.empty(n, dtype=np.int64)
    acked = np.empty(n, dtype=np.int64)
    reads = []
    with plane.a.channel() as a, plane.b.channel() as b:
        track = decision_pb2_grpc.ProfileServiceStub(a).TrackEvents
        get = decision_pb2_grpc.ProfileServiceStub(b).GetProfile
        for i in range(WARMUP + n):
            profile_id = plane.ids[i]  # no visit yet: one makes visits_7d 1
            event = pb.Event(id=f"v{i}", profile_id=profile_id, type="visit", time=_stamp(time.time()))
            start = time.perf_counter_ns()
            response = track(iter([pb.TrackEventsRequest(events=[event])]), timeout=WAIT)
            ack = time.perf_counter_ns()
            assert (response.accepted, response.refused) == (1, 0), response
            count, deadline = 0, time.monotonic() + WAIT
            while True:
                count += 1
                stored = get(pb.GetProfileRequest(id=profile_id), timeout=WAIT)
                if stored.features["visits_7d"].number == 1:
                    break
                assert time.monotonic() < deadline, f"server B never saw {event.id}"
            if i >= WARMUP:
                seen[i - WARMUP] = time.perf_counter_ns() - start
                acked[i - WARMUP] = ack - start
                reads.append(count)
    return seen, acked, reads


@pytest.mark.benchmark(group="freshness over Redis")
def test_event_on_a_seen_on_b(benchmark: Any, record: Recorder, plane: Plane) -> None:
    seen, acked, reads = benchmark.pedantic(_freshness, args=(plane, FRESH_EVENTS), rounds=1)
    assert len(reads) == FRESH_EVENTS
    p50, p95 = p50_p95(seen)
    ack50, ack95 = p50_p95(acked)
    first = sum(1 for r in reads if r == 1)
    record(
        "freshness.track_to_read",
        1,
        seconds=p50,
        p50=p50,
        p95=p95,
        label=f"{FRESH_EVENTS:,} visit events; A's ack alone p50 {ack50 * 1e3:.2f} ms p95 "
        f"{ack95 * 1e3:.2f} ms; B's first read saw it for {first:,}/{FRESH_EVENTS:,}, at most "
        f"{max(reads)} reads",
    )


# --- Decide by id beside Decide with features, on a Redis server ------------------------------


def _redis_calls(plane: Plane) -> int:
    """Commands the redis-server has run so far (INFO commandstats)."""
    client = plane.redis.client()
    try:
        return sum(int(stats["calls"]) for stats in client.info("commandstats").values())
    finally:
        client.close()


def _decide_nth(decide: Callable[..., pb.DecideResponse], requests: list[pb.DecideRequest], i: int) -> None:
    assert len(decide(requests[i], timeout=WAIT).decisions) == 1


@pytest.mark.benchmark(group="decide over Redis")
def test_decide_by_id_on_redis(benchmark: Any, record: Recorder, plane: Plane) -> None:
    count = WARMUP + DECIDE_CALLS
    first = PROFILES - count  # profiles the freshness benchmark leaves alone
    ids, vectors = plane.ids[first:], plane.vectors[first:]
    requests = {
        "by_id": [pb.DecideRequest(profile=pb.Profile(id=i), placements=["hero"]) for i in ids],
        "features": [
            pb.DecideRequest(profile=pb.Profile(features=v.tolist()), placements=["hero"]) for v in vectors
        ],
    }
    with plane.b.channel() as channel:
        decide = decision_pb2_grpc.DecisionServiceStub(channel).Decide
        calls: dict[str, Callable[[int], object]] = {
            mode: functools.partial(_decide_nth, decide, sent) for mode, sent in requests.items()
        }
        ping = decision_pb2_grpc.DecisionServiceStub(channel).Ping
        calls["ping"] = lambda _i: ping(pb.PingRequest(), timeout=WAIT)  # the RPC's own floor
        durations = benchmark.pedantic(_interleaved, args=(calls, DECIDE_CALLS), rounds=1)
        # by id read the stored features: the same offers fail their rules as with them sent
        for i in range(50):
            explained = [
                decide(pb.DecideRequest(profile=p, placements=["hero"], explain=True), timeout=WAIT)
                for p in (pb.Profile(id=ids[i]), pb.Profile(features=vectors[i].tolist()))
            ]
            ruled_out = [{o for o, why in d.decisions[0].reasons.items() if "rule" in why} for d in explained]
            assert ruled_out[0] == ruled_out[1] and ruled_out[0]
        per_call = {}  # Redis commands per Decide (with the background reads of the learning streams)
        for mode in ("by_id", "features"):
            before = _redis_calls(plane)
            for i in range(COUNTED_CALLS):
                calls[mode](i)
            per_call[mode] = (_redis_calls(plane) - before - 1) / COUNTED_CALLS  # less the INFO
    for mode, ns in durations.items():
        p50, p95 = p50_p95(ns)
        label = f"server B, Python client, {DECIDE_CALLS:,} calls each, interleaved"
        if mode in per_call:
            label += f"; {per_call[mode]:.1f} Redis commands per call"
        record(f"freshness.decide.{mode}", 1, seconds=p50, p50=p50, p95=p95, label=label)


# --- a profile read from Redis ----------------------------------------------------------------


@pytest.mark.benchmark(group="profile read from Redis")
def test_profile_read(benchmark: Any, record: Recorder, plane: Plane) -> None:
    count = WARMUP + READ_CALLS
    ids = plane.ids[PROFILES - count :]
    client = plane.redis.client()
    raw = plane.redis.client()
    raw.connection_pool.connection_kwargs["decode_responses"] = False
    names = plane.local.feature_names[: NUMBERS + 1]
    try:
        for i, profile_id in enumerate(ids):  # the same stored features, one hash per profile
            row = plane.vectors[PROFILES - count + i]
            values = [repr(float(v)) for v in row[:NUMBERS]] + [SEGMENTS[int(row[NUMBERS])]]
            client.hset(f"fs:{profile_id}", mapping=dict(zip(names, values, strict=True)))
        engine = plane.local
        calls: dict[str, Callable[[int], object]] = {
            "engine": lambda i: engine.profile(ids[i]),
            "hgetall": lambda i: raw.hgetall(f"fs:{ids[i]}"),
        }
        durations = benchmark.pedantic(_interleaved, args=(calls, READ_CALLS), rounds=1)
        read = engine.profile(ids[0])
        assert read is not None and len(read["features"]) == NUMBERS + 2
        assert read["features"]["segment"] == SEGMENTS[int(plane.vectors[PROFILES - count, NUMBERS])]
        assert len(raw.hgetall(f"fs:{ids[0]}")) == NUMBERS + 1
        # this engine reads Redis, not a copy of its own: it sees the visit server A tracked
        visited = engine.profile(plane.ids[0])
        assert visited is not None and visited["features"]["visits_7d"] == 1
    finally:
        client.close()
        raw.close()
    labels = {
        "engine": "Engine.profile on a Redis profile store (dict of 33 features, consents, history)",
        "hgetall": f"redis-py HGETALL of {NUMBERS + 1} fields, bytes undecoded",
    }
    for mode, ns in durations.items():
        p50, p95 = p50_p95(ns)
        label = f"{labels[mode]}, {READ_CALLS:,} reads"
        record(f"freshness.read.{mode}", 1, seconds=p50, p50=p50, p95=p95, label=label)
