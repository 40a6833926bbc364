"""Triggers (issue 13): how soon an event becomes a delivered decision, and how fast timers fire.

- event to delivered decision of a zero-delay trigger, in-process on the wall clock: the
  server's own `Ticker` (fire_due every 50 ms) on a thread, the bench tracking one event at a
  random phase of the ticker and polling `poll_deliveries` every 0.5 ms until it is there
  (the time a sender in the process waits); and the engine's own work on that path, timed
  call by call: track -> fire_due -> poll_deliveries with no ticker between them;
- the same over gRPC against a server in its own process (catalog_server.py, 127.0.0.1, any
  port, its ticker firing every 50 ms): TrackEvents sends the event, a SubscribeDecisions
  stream (its server side polls every 20 ms while idle) receives the decision on a client
  thread, and the bench acknowledges it; on the embedded store, and on the Redis store (a
  real redis-server on loopback: the timer claimed from Redis under a lease, the decision
  committed there with the firing, the delivery queued there and polled from there);
- timers fired per second with a million pending, on a simulated clock: 1,000,000 profiles,
  one cart event each starting a 30-minute timer, then fire_due at a time past them all,
  again and again until none is left (the core fires at most 10,000 per call). Each fire
  decides the placement on the stored profile and queues a delivery.

    python -m pytest benches/test_triggers.py --benchmark-only
"""

from __future__ import annotations

import queue
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from bench_grpc import Server
from decision_engine import Engine, LoadedCatalog, parse_catalog
from decision_engine.server.triggers import TICK_SECONDS, Ticker
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from results import Recorder

from tests.store.redis_server import RedisServer

TRIGGER_YAML = """\
version: 1
features:
  - {name: segment, type: category, values: [basic, gold], default: gold}
  - {name: cart_adds_7d, type: int, computed: {event: cart_add, aggregate: count, window: 7d}}
channels: [web, email]
placements:
  - {id: hero, channel: web}
  - {id: email_cart, channel: email}
offers:
  - {id: cart_reminder, placements: [email_cart], value: 2.0}
  - {id: cart_gold, placements: [email_cart], rule: 'segment == "gold"'}
  - {id: banner, placements: [hero]}
profiles:
  capacity: 2000000
triggers:
  - {id: cart, event: cart_add, key: cart_id, delay: DELAY, placement: email_cart}
"""
LATENCY_EVENTS = 300  # per latency benchmark (each waits for the ticker: ~25 ms on average)
DIRECT_EVENTS = 3_000
WARMUP_EVENTS = 20
PENDING = 1_000_000  # timers (and profiles, one cart event each)
CHUNK = 10_000  # profiles per upsert, events per track call
T0 = 1_767_225_600.0  # the simulated present of the million-timer benchmark
WAIT = 10.0  # seconds one event may take to come out: a bound for a loaded machine


def trigger_catalog(delay: str) -> LoadedCatalog:
    return parse_catalog(TRIGGER_YAML.replace("DELAY", delay), "triggers.yaml")


def customers(engine: Engine, first: int, count: int, now: float | None = None) -> None:
    """Profiles p{first}.. with email consent (the trigger's outbound channel needs it)."""
    for start in range(first, first + count, CHUNK):
        rows = [
            {"id": f"p{i}", "consents": ["email"]} for i in range(start, min(first + count, start + CHUNK))
        ]
        assert engine.upsert_profiles(rows, now=now).accepted == len(rows)


def cart_event(i: int, at: float) -> dict[str, Any]:
    return {
        "id": f"e{i}",
        "profile_id": f"p{i}",
        "type": "cart_add",
        "time": at,
        "properties": {"cart_id": f"c{i}"},
    }


def p50_p95(durations_ns: npt.NDArray[np.int64]) -> tuple[float, float]:
    p50, p95 = np.percentile(durations_ns, [50, 95])
    return float(p50) * 1e-9, float(p95) * 1e-9


# --- in-process -----------------------------------------------------------------------------


def _one_delivery(engine: Engine, profile_id: str) -> None:
    """Waits (polling every 0.5 ms) for the delivery of `profile_id`'s decision, acks it."""
    deadline = time.monotonic() + WAIT
    while not (got := engine.poll_deliveries("email", max=10)):
        assert time.monotonic() < deadline, f"no delivery for {profile_id} within {WAIT} s"
        time.sleep(0.0005)
    assert [d["profile_id"] for d in got] == [profile_id]
    assert engine.ack_deliveries([got[0]["decision_id"]]) == 1


def _through_ticker(engine: Engine, n: int, warmup: int) -> npt.NDArray[np.int64]:
    rng = random.Random(13)
    durations = np.empty(n, dtype=np.int64)
    ticker = Ticker(engine)
    ticker.start()
    try:
        for i in range(warmup + n):
            time.sleep(rng.uniform(0, TICK_SECONDS))  # a random phase against the ticker
            start = time.perf_counter_ns()
            assert engine.track([cart_event(i, time.time())]).accepted == 1
            _one_delivery(engine, f"p{i}")
            if i >= warmup:
                durations[i - warmup] = time.perf_counter_ns() - start
    finally:
        ticker.stop()
    assert ticker.errors == 0 and ticker.fired == warmup + n
    return durations


def _direct(engine: Engine, first: int, n: int, warmup: int) -> npt.NDArray[np.int64]:
    durations = np.empty(n, dtype=np.int64)
    for k in range(warmup + n):
        i = first + k
        start = time.perf_counter_ns()
        assert engine.track([cart_event(i, time.time())]).accepted == 1
        assert engine.fire_due() == 1
        (delivery,) = engine.poll_deliveries("email", max=10)
        elapsed = time.perf_counter_ns() - start
        assert delivery["profile_id"] == f"p{i}"
        assert engine.ack_deliveries([delivery["decision_id"]]) == 1
        if k >= warmup:
            durations[k - warmup] = elapsed
    return durations


@pytest.mark.benchmark(group="trigger latency")
def test_event_to_delivery_in_process(benchmark: Any, record: Recorder) -> None:
    engine = Engine(trigger_catalog("0s"), seed=1)  # the wall clock, as a server runs
    ticked = LATENCY_EVENTS + WARMUP_EVENTS
    customers(engine, 0, ticked + DIRECT_EVENTS + WARMUP_EVENTS)
    durations = benchmark.pedantic(_through_ticker, args=(engine, LATENCY_EVENTS, WARMUP_EVENTS), rounds=1)
    direct = _direct(engine, ticked, DIRECT_EVENTS, WARMUP_EVENTS)
    assert engine.pending_timers == 0 and engine.pending_deliveries == 0
    outcomes = [h["outcome"] for h in engine.trigger_history("p0")]
    assert outcomes == ["delivered", "acknowledged"]
    for key, ns, what in (
        ("triggers.inproc.ticker", durations, f"Ticker every {TICK_SECONDS * 1e3:.0f} ms, 0.5 ms polls"),
        ("triggers.inproc.direct", direct, "track -> fire_due -> poll_deliveries, no ticker"),
    ):
        p50, p95 = p50_p95(ns)
        record(key, 1, seconds=p50, p50=p50, p95=p95, label=f"{what}, {len(ns):,} events")


# --- over gRPC ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _serve(path: Path) -> Iterator[Server]:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("catalog_server.py")), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        yield Server(int(process.stdout.readline()), process.pid)
    finally:
        process.stdin.close()
        process.wait(30)
        process.stdout.close()


@pytest.fixture(scope="module")
def trigger_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("triggers") / "triggers.yaml"
    path.write_text(TRIGGER_YAML.replace("DELAY", "0s"), encoding="utf-8")
    yield from _serve(path)


@pytest.fixture(scope="module")
def redis_trigger_server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("triggers-redis") / "triggers.yaml"
    store = f"store: {{type: redis, url: '{redis_url}', key_prefix: bench-triggers, timeout_ms: 500}}\n"
    path.write_text(
        TRIGGER_YAML.replace("DELAY", "0s").replace("triggers:\n", store + "triggers:\n"), "utf-8"
    )
    yield from _serve(path)


def _stamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


class Subscriber:
    """A SubscribeDecisions call read on a thread of its own: (receipt ns, message) pairs."""

    def __init__(self, channel: grpc.Channel) -> None:
        stub = decision_pb2_grpc.TriggerServiceStub(channel)
        self.call = stub.SubscribeDecisions(pb.SubscribeDecisionsRequest(channel="email"), timeout=600)
        self.received: queue.Queue[tuple[int, pb.TriggeredDecision]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self.received.put((time.perf_counter_ns(), message))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def _over_grpc(channel: grpc.Channel, n: int, warmup: int) -> npt.NDArray[np.int64]:
    profiles = decision_pb2_grpc.ProfileServiceStub(channel)
    triggers = decision_pb2_grpc.TriggerServiceStub(channel)
    rows = [pb.ProfileUpsert(id=f"p{i}", consents=["email"]) for i in range(warmup + n)]
    assert profiles.UpsertProfiles(pb.UpsertProfilesRequest(profiles=rows), timeout=WAIT).accepted == len(
        rows
    )
    rng = random.Random(17)
    durations = np.empty(n, dtype=np.int64)
    subscriber = Subscriber(channel)
    try:
        for i in range(warmup + n):
            time.sleep(rng.uniform(0, TICK_SECONDS))
            event = pb.Event(id=f"e{i}", profile_id=f"p{i}", type="cart_add", time=_stamp(time.time()))
            event.properties["cart_id"].category = f"c{i}"
            start = time.perf_counter_ns()
            tracked = profiles.TrackEvents(iter([pb.TrackEventsRequest(events=[event])]), timeout=WAIT)
            assert tracked.accepted == 1, tracked
            received, message = subscriber.received.get(timeout=WAIT)
            assert (message.profile_id, message.trigger, message.attempt) == (f"p{i}", "cart", 1)
            ack = pb.AckDecisionsRequest(decision_ids=[message.decision.decision_id])
            assert triggers.AckDecisions(ack, timeout=WAIT).acknowledged == 1
            if i >= warmup:
                durations[i - warmup] = received - start
    finally:
        subscriber.close()
    assert subscriber.received.empty()
    return durations


@pytest.mark.benchmark(group="trigger latency")
@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_event_to_delivery_grpc(
    benchmark: Any, record: Recorder, store: str, request: pytest.FixtureRequest
) -> None:
    server: Server = request.getfixturevalue(
        "trigger_server" if store == "embedded" else "redis_trigger_server"
    )
    with server.channel() as channel:
        durations = benchmark.pedantic(_over_grpc, args=(channel, LATENCY_EVENTS, WARMUP_EVENTS), rounds=1)
    p50, p95 = p50_p95(durations)
    label = (
        f"TrackEvents -> server ticker ({TICK_SECONDS * 1e3:.0f} ms) -> SubscribeDecisions, "
        f"{store} store, {len(durations):,} events"
    )
    record(
        "triggers.grpc" if store == "embedded" else "triggers.grpc.redis",
        1,
        seconds=p50,
        p50=p50,
        p95=p95,
        label=label,
    )


# --- a million pending timers ---------------------------------------------------------------


@pytest.mark.benchmark(group="trigger timers")
def test_timers_fired_per_second(benchmark: Any, record: Recorder) -> None:
    engine = Engine(trigger_catalog("30m"), seed=1, clock="simulated")
    customers(engine, 0, PENDING, now=T0)
    start = time.perf_counter()
    for first in range(0, PENDING, CHUNK):
        events = [cart_event(i, T0 + i * 1e-3) for i in range(first, min(PENDING, first + CHUNK))]
        assert engine.track(events).accepted == len(events)
    scheduling = time.perf_counter() - start
    assert engine.pending_timers == PENDING
    late = T0 + 3_600.0 + PENDING * 1e-3  # past every timer's 30 minutes

    def fire_all() -> tuple[int, int]:
        fired = calls = 0
        while n := engine.fire_due(late):
            fired += n
            calls += 1
        return fired, calls

    fired, calls = benchmark.pedantic(fire_all, rounds=1)
    assert fired == PENDING and engine.pending_timers == 0
    assert engine.pending_deliveries == PENDING  # every fire decided and queued its delivery
    sample = engine.poll_deliveries("email", max=CHUNK, now=late)  # what a sender reads first
    assert len(sample) == CHUNK and all(d["trigger"] == "cart" and d["offers"] for d in sample)
    seconds = benchmark.stats.stats.median
    record(
        "triggers.timers",
        fired,
        label=f"{fired:,} pending timers over {PENDING:,} profiles fired by {calls} fire_due calls in "
        f"{seconds:.2f} s; scheduling them (track, {CHUNK:,} events a call) took {scheduling:.2f} s",
    )
