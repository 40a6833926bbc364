"""What one client can take from a real server on loopback, and what it gets past each limit:
streams, concurrent calls, connections, idle and old connections, refusals listed per stream."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from decision_engine import Engine
from decision_engine.server import Limits
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.server.server_helpers import GOOD, rpc_error

RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


class IdleStreams:
    """`count` ReportOutcomes streams that send `first` outcomes, then nothing until closed."""

    def __init__(self, stub, count, first=()):
        self.release = threading.Event()
        self.calls = [stub.ReportOutcomes.future(self._requests(first)) for _ in range(count)]

    def _requests(self, first) -> Iterator[pb.ReportOutcomeRequest]:
        yield from first
        self.release.wait(30)

    def refused(self):
        return [c for c in self.calls if c.done() and c.exception() is not None]

    def close(self):
        self.release.set()
        for call in self.calls:
            call.cancel()


@pytest.fixture
def idle_streams():
    opened = []

    def open_streams(stub, count, first=()):
        streams = IdleStreams(stub, count, first)
        opened.append(streams)
        return streams

    yield open_streams
    for streams in opened:
        streams.close()


def decide(running):
    request = pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"])
    return running.decisions.Decide(request, timeout=5)


def health(running):
    return health_pb2_grpc.HealthStub(running.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_idle_streams_past_the_pool_size_do_not_starve_unary_calls_or_health(served, idle_streams):
    limits = Limits()
    count = limits.threads + limits.max_streams + 4  # more streams than the whole pool has threads
    streams = idle_streams(served.decisions, count)
    guard = served.server.streams
    wait_for(
        lambda: guard.active == limits.max_streams and len(streams.refused()) == count - limits.max_streams
    )
    for call in streams.refused():
        assert call.exception().code() == RESOURCE_EXHAUSTED
        message = f"too many streaming calls at once (the limit is {limits.max_streams}); retry later"
        assert call.exception().details() == message
    assert decide(served).decisions[0].offers  # answered while every stream slot is held
    assert health(served).status == health_pb2.HealthCheckResponse.SERVING
    assert served.decisions.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()
    streams.close()
    wait_for(lambda: guard.active == 0)
    assert served.decisions.ReportOutcomes(iter([]), timeout=5).accepted == 0  # slots are given back


def test_health_watch_streams_share_the_bound(start_server, inline_catalog):
    running = start_server(
        Engine(inline_catalog, seed=7, clock="simulated"), limits=Limits(max_streams=2, max_concurrent_rpcs=8)
    )
    stub = health_pb2_grpc.HealthStub(running.channel)
    watches = []
    try:
        for _ in range(2):  # one after the other: each is held, waiting for a change of status
            watches.append(stub.Watch(health_pb2.HealthCheckRequest(), timeout=10))
            assert next(watches[-1]).status == health_pb2.HealthCheckResponse.SERVING
        watches.append(stub.Watch(health_pb2.HealthCheckRequest(), timeout=10))
        error = rpc_error(lambda: next(watches[-1]))
        assert error.code() == RESOURCE_EXHAUSTED
        assert health(running).status == health_pb2.HealthCheckResponse.SERVING  # Check is unary
    finally:
        for watch in watches:
            watch.cancel()


def test_an_idle_request_stream_is_cancelled(start_server, inline_catalog, idle_streams, caplog):
    caplog.set_level("INFO", logger="decision_engine.server")
    running = start_server(
        Engine(inline_catalog, seed=7, clock="simulated"), limits=Limits(stream_idle_seconds=0.3)
    )
    decision = decide(running).decisions[0]
    first = [pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=1.0)]
    streams = idle_streams(running.decisions, 2, first)
    guard = running.server.streams
    wait_for(lambda: guard.cancelled_idle == 2 and guard.active == 0)
    for call in streams.calls:
        wait_for(call.done)
        assert call.exception().code() == grpc.StatusCode.CANCELLED
    stats = running.server.metrics.stats.snapshot()
    assert (stats.outcomes, stats.rejected_outcomes) == (1, 1)  # what came before the idle time counts
    assert "stream cancelled: no message within the idle timeout" in caplog.text
    assert "unexpected error" not in caplog.text


def test_a_stream_that_keeps_sending_is_not_idle(start_server, inline_catalog):
    running = start_server(
        Engine(inline_catalog, seed=7, clock="simulated"), limits=Limits(stream_idle_seconds=0.3)
    )

    def slow_outcomes():
        for _ in range(4):
            time.sleep(0.15)  # under the idle timeout between messages, over it in all
            yield pb.ReportOutcomeRequest(decision_id=999, reward=1.0)

    response = running.decisions.ReportOutcomes(slow_outcomes(), timeout=10)
    assert (response.accepted, response.refused) == (0, 4)
    assert running.server.streams.cancelled_idle == 0


def test_calls_past_the_concurrency_bound_are_shed(start_server, inline_catalog, monkeypatch):
    running = start_server(
        Engine(inline_catalog, seed=7, clock="simulated"),
        limits=Limits(threads=4, max_streams=1, max_concurrent_rpcs=2),
    )
    engine = running.engine
    gate, entered = threading.Event(), threading.Semaphore(0)
    decide_wire = engine.decide_wire

    def held_decide(*args):  # the real Decide, once the test lets it go
        entered.release()
        gate.wait(10)
        return decide_wire(*args)

    monkeypatch.setattr(engine, "decide_wire", held_decide)
    try:
        held = [running.decisions.Decide.future(
            pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"]), timeout=10
        ) for _ in range(2)]  # fmt: skip
        assert entered.acquire(timeout=5) and entered.acquire(timeout=5)  # both running
        error = rpc_error(lambda: running.decisions.Ping(pb.PingRequest(), timeout=5))
        assert (error.code(), error.details()) == (RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!")
    finally:
        gate.set()
    assert all(call.result(timeout=5).decisions for call in held)
    assert running.decisions.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()


def own_channel(port):
    """A channel with a connection of its own (no subchannel shared with other channels)."""
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])


def ping(channel):
    return decision_pb2_grpc.DecisionServiceStub(channel).Ping(pb.PingRequest(), timeout=5)


def test_connections_past_the_bound_are_closed(start_server, inline_catalog):
    running = start_server(
        Engine(inline_catalog, seed=7, clock="simulated"), limits=Limits(max_connections=2)
    )
    ping(running.channel)  # the fixture's channel holds one connection
    second, third = own_channel(running.port), own_channel(running.port)
    try:
        assert ping(second) == pb.PingResponse()
        error = rpc_error(lambda: ping(third))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        second.close()
        wait_for(lambda: _pings(third))  # a freed connection can be taken again
    finally:
        second.close()
        third.close()


def _pings(channel):
    try:
        return ping(channel) == pb.PingResponse()
    except grpc.RpcError:
        return False


def seconds_until_closed(port, send=b"", timeout=10.0):
    """Connects, sends `send`, reads until the server closes: (seconds, bytes read)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(timeout)
        sock.sendall(send)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    return time.monotonic() - start, received


@pytest.mark.parametrize(
    ("limits", "send", "goaway"),
    [
        (Limits(handshake_seconds=0.3), b"", None),  # connects and says nothing
        (Limits(connection_idle_seconds=0.3), H2_PREFACE, b"connection idle"),  # HTTP/2, no call
        (Limits(connection_age_seconds=0.3, connection_age_grace_seconds=0.2), H2_PREFACE, b"max_age"),
    ],
    ids=["handshake", "idle", "age"],
)
def test_connections_are_closed_when_silent_idle_or_old(start_server, inline_catalog, limits, send, goaway):
    running = start_server(Engine(inline_catalog, seed=7, clock="simulated"), limits=limits)
    seconds, received = seconds_until_closed(running.port, send)
    assert seconds < 5
    if goaway is not None:
        assert goaway in received  # the debug text of the server's GOAWAY frame


def test_report_outcomes_counts_every_refusal_and_lists_the_first(served):
    decision = decide(served).decisions[0]
    outcomes = [pb.ReportOutcomeRequest(decision_id=10_000_000 + i, reward=1.0) for i in range(1_500)]
    outcomes.insert(700, pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=1.0))
    response = served.decisions.ReportOutcomes(iter(outcomes), timeout=30)
    assert (response.accepted, response.refused) == (1, 1_500)
    assert len(response.rejected) == Limits().max_listed_refusals == 1_000
    indexes = [r.index for r in response.rejected]
    assert indexes == [*range(700), *range(701, 1_001)]  # the first 1,000, the accepted one skipped
    assert response.rejected[0].code == "NOT_FOUND" and response.rejected[0].decision_id == 10_000_000


def test_limits_are_checked():
    with pytest.raises(ValueError, match="limit max_streams must be positive, got 0"):
        Limits(max_streams=0)
    with pytest.raises(ValueError, match=r"max_concurrent_rpcs \(8\) must be more than max_streams \(8\)"):
        Limits(max_concurrent_rpcs=8)
