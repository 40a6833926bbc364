"""The customer plane on the demo catalog (32 stored features, `visits_7d` and
`days_since_visit` computed from visit events, a contact policy):

- deciding by id on a stored profile beside deciding with the same features sent in the
  request, interleaved call by call in one loop on one engine, anonymous and with the same
  profile id (then both apply the profile's contact history: only where the features come
  from differs);
- upsert throughput (rows of dicts, a numpy array with ids, an Arrow table: the last two go
  columnar) and track throughput, each into a fresh engine;
- bytes per stored profile: the process's resident memory before and after upserting 200,000
  profiles with no history (issue aim: under 512 bytes);
- over gRPC, against a server in its own process (profiles_server.py, 127.0.0.1, any port):
  Decide by id beside Decide with the features, latency call by call and the server's CPU per
  call, then UpsertProfileStream and TrackEvents throughput over one stream each.

    python -m pytest benches/test_profiles.py --benchmark-only
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from bench_grpc import Server
from decision_engine import Engine
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from results import Recorder, percentiles

from seeds.generator import DEMO_CATALOG, generate_profiles

PLACEMENT = "web_home_hero"
DECIDE_PROFILES = 40_000  # stored profiles the decide benchmarks read, each decided on once per mode
DECIDE_CALLS = 20_000  # per mode, in-process
GRPC_CALLS = 3_000  # per mode, over gRPC
WARMUP_CALLS = 500
VISITS = 3  # visit events per decided-on profile, within the week: computed attributes with data
WRITE_ROWS = 100_000  # profiles per upsert benchmark, events per track benchmark
EVENT_PROFILES = 10_000
MEMORY_ROWS = 200_000
MEMORY_CHUNK = 10_000
GRPC_WRITE_ROWS = 50_000
GRPC_BATCH = 1_000  # rows per stream message
HOUR = 3_600.0


def _profile_ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _stored_matrix(engine: Engine, n: int, seed: int) -> npt.NDArray[np.float64]:
    """(n, stored features) float64, the generator's demo customers."""
    return generate_profiles(n, seed, DEMO_CATALOG, stored_only=True).astype(np.float64)


def _named_rows(engine: Engine, ids: list[str], matrix: npt.NDArray[np.float64]) -> list[dict[str, Any]]:
    """The same profiles as dicts by feature name: categories by value name, bools, ints."""
    features = {f.name: f for f in engine.catalog.model.features}
    columns: dict[str, list[Any]] = {}
    for j, name in enumerate(engine.stored_features):
        feature, values = features[name], matrix[:, j]
        if feature.values:
            columns[name] = np.asarray(feature.values)[values.astype(np.int64)].tolist()
        elif feature.type == "bool":
            columns[name] = (values != 0).tolist()
        elif feature.type == "int":
            columns[name] = values.astype(np.int64).tolist()
        else:
            columns[name] = values.tolist()
    names = list(columns)
    return [
        {"id": pid, **dict(zip(names, row, strict=True))}
        for pid, row in zip(ids, zip(*columns.values(), strict=True), strict=True)
    ]


def _visits(ids: list[str], per_profile: int, now: float, prefix: str = "v") -> list[dict[str, Any]]:
    """`per_profile` visit events for each id, an hour apart, the last an hour before `now`."""
    return [
        {"id": f"{prefix}{i}-{k}", "profile_id": pid, "type": "visit", "time": now - (k + 1) * HOUR}
        for i, pid in enumerate(ids)
        for k in range(per_profile)
    ]


# --- in-process: decide by id beside decide with features -----------------------------------


@pytest.fixture(scope="module")
def stored() -> tuple[Engine, list[str], npt.NDArray[np.float32]]:
    """An engine holding DECIDE_PROFILES profiles with VISITS recent visits each, their ids, and
    the full feature vectors a request would carry (stored features + the computed ones)."""
    engine = Engine(DEMO_CATALOG, seed=1, clock="simulated")
    ids = _profile_ids("p", DECIDE_PROFILES)
    matrix = _stored_matrix(engine, DECIDE_PROFILES, seed=11)
    assert engine.upsert_profiles(ids=ids, features=matrix).accepted == DECIDE_PROFILES
    now = time.time()
    assert engine.track(_visits(ids, VISITS, now)).accepted == DECIDE_PROFILES * VISITS
    computed = [
        engine.feature_names.index(f) for f in engine.feature_names if f not in engine.stored_features
    ]
    rows = np.zeros((DECIDE_PROFILES, len(engine.feature_names)), dtype=np.float32)
    rows[:, [engine.feature_names.index(f) for f in engine.stored_features]] = matrix
    first = engine.profile(ids[0])
    assert first is not None and first["features"]["visits_7d"] == VISITS
    for j in computed:  # what the stored profile computes: VISITS in the week, the last an hour ago
        name = engine.feature_names[j]
        rows[:, j] = float(first["features"][name])
    return engine, ids, rows


def _interleaved(
    calls: dict[str, Callable[[int], object]], n: int, warmup: int
) -> dict[str, npt.NDArray[np.int64]]:
    """Each call of `calls` on argument i, in turn, for i in range(n), each timed on its own
    (ns); the order of the modes rotates from one i to the next."""
    names = list(calls)
    for i in range(warmup):
        for name in names:
            calls[name](i)
    durations = {name: np.empty(n, dtype=np.int64) for name in names}
    clock = time.perf_counter_ns
    for i in range(warmup, warmup + n):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            call = calls[name]
            start = clock()
            call(i)
            durations[name][i - warmup] = clock() - start
    return durations


@pytest.mark.benchmark(group="decide by id")
def test_decide_by_id_in_process(
    benchmark: Any,
    record: Recorder,
    stored: tuple[Engine, list[str], npt.NDArray[np.float32]],
) -> None:
    engine, ids, rows = stored
    calls: dict[str, Callable[[int], object]] = {
        "by_id": lambda i: engine.decide(PLACEMENT, None, profile_id=ids[i]),
        "features": lambda i: engine.decide(PLACEMENT, rows[i]),
        "features_id": lambda i: engine.decide(PLACEMENT, rows[i], profile_id=ids[i]),
    }
    assert DECIDE_CALLS + WARMUP_CALLS <= len(ids)
    durations = benchmark.pedantic(
        _interleaved, args=(calls, DECIDE_CALLS, WARMUP_CALLS), rounds=1, iterations=1
    )
    # on a profile no decision touched yet, by id sees what the request carries
    for i in range(DECIDE_CALLS + WARMUP_CALLS, DECIDE_CALLS + WARMUP_CALLS + 200):
        by_id = engine.decide(PLACEMENT, None, profile_id=ids[i], explain=True)
        assert by_id.eligible == engine.decide(PLACEMENT, rows[i], explain=True).eligible
    for mode, ns in durations.items():
        p50, p99 = percentiles(ns)
        record(f"profiles.decide.{mode}", 1, seconds=p50, p50=p50, p99=p99, label=f"{DECIDE_CALLS:,} calls")


# --- in-process: upsert and track throughput --------------------------------------------------


@pytest.fixture(scope="module")
def writes() -> dict[str, Any]:
    """WRITE_ROWS profiles as dicts, as an (ids, array) pair and as an Arrow table; WRITE_ROWS
    events over EVENT_PROFILES profiles."""
    engine = Engine(DEMO_CATALOG, seed=1, clock="simulated")
    ids = _profile_ids("w", WRITE_ROWS)
    matrix = _stored_matrix(engine, WRITE_ROWS, seed=12)
    dicts = _named_rows(engine, ids, matrix)
    table = pa.Table.from_pylist(dicts)
    now = time.time()
    events = [
        {
            "id": f"e{i}",
            "profile_id": f"w{i % EVENT_PROFILES}",
            "type": "visit",
            "time": now - (WRITE_ROWS - i),
        }
        for i in range(WRITE_ROWS)
    ]
    return {"ids": ids, "matrix": matrix, "dicts": dicts, "arrow": table, "events": events}


def _fresh_engine(
    preload: dict[str, Any] | None = None,
) -> Callable[[], tuple[tuple[Engine], dict[str, Any]]]:
    def setup() -> tuple[tuple[Engine], dict[str, Any]]:
        engine = Engine(DEMO_CATALOG, seed=1, clock="simulated")
        if preload is not None:
            engine.upsert_profiles(**preload)
        gc.collect()
        return (engine,), {}

    return setup


@pytest.mark.benchmark(group="profile writes")
@pytest.mark.parametrize("form", ["dicts", "numpy", "arrow"])
def test_upsert_throughput(benchmark: Any, record: Recorder, writes: dict[str, Any], form: str) -> None:
    data: dict[str, Any] = (
        {"ids": writes["ids"], "features": writes["matrix"]} if form == "numpy" else {"data": writes[form]}
    )
    report = benchmark.pedantic(
        lambda engine: engine.upsert_profiles(**data), setup=_fresh_engine(), rounds=3, iterations=1
    )
    assert report.accepted == WRITE_ROWS and not report.rejected
    label = {
        "dicts": "list of dicts",
        "numpy": "ids + float64 array, columnar",
        "arrow": "Arrow table, columnar",
    }
    record(f"profiles.upsert.{form}", WRITE_ROWS, label=f"{WRITE_ROWS:,} new profiles, {label[form]}")


@pytest.mark.benchmark(group="profile writes")
def test_track_throughput(benchmark: Any, record: Recorder, writes: dict[str, Any]) -> None:
    preload = {"ids": writes["ids"][:EVENT_PROFILES], "features": writes["matrix"][:EVENT_PROFILES]}
    report = benchmark.pedantic(
        lambda engine: engine.track(writes["events"]), setup=_fresh_engine(preload), rounds=3, iterations=1
    )
    assert report.accepted == WRITE_ROWS and report.duplicates == 0
    record(
        "profiles.track", WRITE_ROWS, label=f"{WRITE_ROWS:,} visit events over {EVENT_PROFILES:,} profiles"
    )


# --- in-process: bytes per profile ------------------------------------------------------------


def _resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _settle() -> int:
    """Resident bytes once Python's garbage and the allocator's free pages are given back."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is not None and hasattr(ctypes.CDLL(name), "malloc_trim"):
        ctypes.CDLL(name).malloc_trim(0)
    return _resident_bytes()


@pytest.mark.benchmark(group="profile memory")
def test_bytes_per_profile(benchmark: Any, record: Recorder) -> None:
    engine = Engine(DEMO_CATALOG, seed=1, clock="simulated")
    ids = _profile_ids("m", MEMORY_ROWS)  # held before and after: not counted
    matrix = _stored_matrix(engine, MEMORY_ROWS, seed=13)
    chunks = [
        (ids[s : s + MEMORY_CHUNK], matrix[s : s + MEMORY_CHUNK]) for s in range(0, MEMORY_ROWS, MEMORY_CHUNK)
    ]

    def load() -> int:
        before = _settle()
        for chunk_ids, chunk in chunks:  # small chunks: the transient copies stay small
            assert engine.upsert_profiles(ids=chunk_ids, features=chunk).accepted == len(chunk_ids)
        return _settle() - before

    grown = benchmark.pedantic(load, rounds=1, iterations=1)
    assert engine.profile_count == MEMORY_ROWS
    per_profile = grown / MEMORY_ROWS
    width = len(engine.stored_features)
    record(
        "profiles.bytes",
        MEMORY_ROWS,
        label=f"{per_profile:,.0f} bytes per profile (resident memory +{grown / 2**20:,.1f} MiB for "
        f"{MEMORY_ROWS:,} profiles of {width} stored features, no history)",
    )


# --- over gRPC --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("profiles_server.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        port = int(process.stdout.readline())
        yield Server(port, process.pid)
    finally:
        process.stdin.close()
        process.wait(30)
        process.stdout.close()


def _value(value: Any) -> pb.FeatureValue:
    if isinstance(value, bool):
        return pb.FeatureValue(flag=value)
    if isinstance(value, str):
        return pb.FeatureValue(category=value)
    return pb.FeatureValue(number=float(value))


def _upsert_messages(rows: list[dict[str, Any]]) -> list[pb.UpsertProfilesRequest]:
    messages = []
    for start in range(0, len(rows), GRPC_BATCH):
        profiles = [
            pb.ProfileUpsert(id=row["id"], features={k: _value(v) for k, v in row.items() if k != "id"})
            for row in rows[start : start + GRPC_BATCH]
        ]
        messages.append(pb.UpsertProfilesRequest(profiles=profiles))
    return messages


def _event_messages(events: list[dict[str, Any]]) -> list[pb.TrackEventsRequest]:
    messages = []
    for start in range(0, len(events), GRPC_BATCH):
        batch = []
        for event in events[start : start + GRPC_BATCH]:
            at = Timestamp()
            at.FromNanoseconds(int(event["time"] * 1e9))
            batch.append(
                pb.Event(id=event["id"], profile_id=event["profile_id"], type=event["type"], time=at)
            )
        messages.append(pb.TrackEventsRequest(events=batch))
    return messages


@pytest.fixture(scope="module")
def served_profiles(
    server: Server, stored: tuple[Engine, list[str], npt.NDArray[np.float32]]
) -> tuple[list[str], npt.NDArray[np.float32]]:
    """The decide benchmark's profiles and visits, written to the server over its streams."""
    engine, ids, rows = stored
    count = GRPC_CALLS + WARMUP_CALLS
    stored_columns = [engine.feature_names.index(f) for f in engine.stored_features]
    matrix = rows[:count, stored_columns].astype(np.float64)
    with server.channel() as channel:
        stub = decision_pb2_grpc.ProfileServiceStub(channel)
        written = stub.UpsertProfileStream(iter(_upsert_messages(_named_rows(engine, ids[:count], matrix))))
        assert written.accepted == count and not written.rejected
        tracked = stub.TrackEvents(iter(_event_messages(_visits(ids[:count], VISITS, time.time()))))
        assert tracked.accepted == count * VISITS
    return ids[:count], rows[:count]


def _decide_nth(decide: Callable[[Any], object], requests: list[Any], i: int) -> object:
    return decide(requests[i])


def _server_cpu(
    server: Server, calls: dict[str, Callable[[int], object]], n: int, blocks: int = 6
) -> dict[str, float]:
    """Server CPU seconds per call of each mode, over alternating blocks of calls."""
    spent = dict.fromkeys(calls, 0.0)
    done = dict.fromkeys(calls, 0)
    size = n // blocks
    for block in range(blocks):
        for name, call in calls.items():
            before = server.cpu_seconds()
            for i in range(block * size, (block + 1) * size):
                call(i)
            spent[name] += server.cpu_seconds() - before
            done[name] += size
    return {name: spent[name] / done[name] for name in calls}


@pytest.mark.benchmark(group="decide by id, gRPC")
def test_decide_by_id_grpc(
    benchmark: Any,
    record: Recorder,
    server: Server,
    served_profiles: tuple[list[str], npt.NDArray[np.float32]],
) -> None:
    ids, rows = served_profiles
    requests = {
        "by_id": [pb.DecideRequest(profile=pb.Profile(id=i), placements=[PLACEMENT]) for i in ids],
        "features": [
            pb.DecideRequest(profile=pb.Profile(features=r.tolist()), placements=[PLACEMENT]) for r in rows
        ],
        "features_id": [
            pb.DecideRequest(profile=pb.Profile(id=i, features=r.tolist()), placements=[PLACEMENT])
            for i, r in zip(ids, rows, strict=True)
        ],
    }
    with server.channel() as channel:
        decide = decision_pb2_grpc.DecisionServiceStub(channel).Decide
        answer = decide(requests["by_id"][0])
        assert len(answer.decisions) == 1
        calls: dict[str, Callable[[int], object]] = {
            mode: functools.partial(_decide_nth, decide, sent) for mode, sent in requests.items()
        }
        durations = benchmark.pedantic(
            _interleaved, args=(calls, GRPC_CALLS, WARMUP_CALLS), rounds=1, iterations=1
        )
        cpu = _server_cpu(server, calls, GRPC_CALLS)
    for mode, ns in durations.items():
        p50, p99 = percentiles(ns)
        record(f"profiles.grpc.{mode}", 1, seconds=p50, p50=p50, p99=p99, label=f"{GRPC_CALLS:,} calls")
        record(f"profiles.grpc_cpu.{mode}", 1, seconds=cpu[mode], label="server CPU per call")


@pytest.mark.benchmark(group="profile writes, gRPC stream")
@pytest.mark.parametrize("rpc", ["UpsertProfileStream", "TrackEvents"])
def test_stream_throughput(
    benchmark: Any, record: Recorder, server: Server, writes: dict[str, Any], rpc: str
) -> None:
    """One stream of GRPC_WRITE_ROWS new profiles (ids no other benchmark writes), or of as
    many visit events (new event ids) over profiles the upsert stream wrote or they create."""
    messages: list[Any]
    if rpc == "UpsertProfileStream":
        messages = _upsert_messages(
            [{**row, "id": f"s-{row['id']}"} for row in writes["dicts"][:GRPC_WRITE_ROWS]]
        )
    else:
        events = writes["events"][:GRPC_WRITE_ROWS]
        messages = _event_messages(
            [{**e, "id": f"s-{e['id']}", "profile_id": f"s-{e['profile_id']}"} for e in events]
        )
    with server.channel() as channel:
        call = getattr(decision_pb2_grpc.ProfileServiceStub(channel), rpc)
        cpu_before = server.cpu_seconds()
        response = benchmark.pedantic(call, args=(iter(messages),), rounds=1, iterations=1)
        cpu = server.cpu_seconds() - cpu_before
    assert response.accepted == GRPC_WRITE_ROWS and not response.rejected
    what = "new profiles" if rpc == "UpsertProfileStream" else "visit events"
    record(
        f"profiles.grpc.{rpc}",
        GRPC_WRITE_ROWS,
        label=f"{GRPC_WRITE_ROWS:,} {what} in messages of {GRPC_BATCH:,}, Python client, one stream; "
        f"server CPU {cpu / GRPC_WRITE_ROWS * 1e6:.1f} us per row",
    )
