"""TriggerService on a real server (127.0.0.1, port 0, the wall clock): an event sent with
TrackEvents starts a zero-delay trigger, the server's ticker fires it, a SubscribeDecisions
client receives the decision, disconnects without acknowledging, gets it again (attempt 2),
acknowledges it, and it does not come again. Request bounds, the stream budget, auth, stop, and
two servers sharing one Redis."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from decision_engine import Engine
from decision_engine.ids import DecisionIds
from decision_engine.server import Limits, Tokens, create_server
from decision_engine.server.server import DecisionServer
from decision_engine.server.triggers import TriggerServicer
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.store.redis_server import RedisServer
from tests.triggers.conftest import catalog

TIMEOUT = 10  # a bound for a loaded machine, not a timing claim
AT_ONCE = "  - {id: cart_now, event: cart_add, key: cart_id, delay: 0s, placement: email_cart}\n"


@dataclass
class Served:
    server: DecisionServer
    engine: Engine
    channel: grpc.Channel
    triggers: decision_pb2_grpc.TriggerServiceStub
    profiles: decision_pb2_grpc.ProfileServiceStub


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(**options: object) -> Served:
        engine = Engine(catalog(AT_ONCE), seed=7)  # the wall clock, as a server runs
        server, port = create_server("127.0.0.1:0", engine, **options)  # type: ignore[arg-type]
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        served = Served(
            server,
            engine,
            channel,
            decision_pb2_grpc.TriggerServiceStub(channel),
            decision_pb2_grpc.ProfileServiceStub(channel),
        )
        started.append(served)
        return served

    yield start
    for served in started:
        served.channel.close()
        served.server.stop(None).wait(5)


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


class Subscriber:
    """A SubscribeDecisions call read on a thread of its own, into a queue."""

    def __init__(self, stub: decision_pb2_grpc.TriggerServiceStub, **request: object) -> None:
        self.call = stub.SubscribeDecisions(
            pb.SubscribeDecisionsRequest(channel="email", **request), timeout=60
        )
        self.received: queue.Queue[pb.TriggeredDecision] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self.received.put(message)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.ended.set()

    def next(self, timeout: float = TIMEOUT) -> pb.TriggeredDecision:
        return self.received.get(timeout=timeout)

    def nothing_for(self, seconds: float) -> bool:
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


def stamp(seconds: float) -> Timestamp:
    message = Timestamp()
    message.FromNanoseconds(round(seconds * 1e9))
    return message


def add_cart(served: Served, profile_id: str, event_id: str) -> float:
    """Sends a cart_add through TrackEvents (a client stream); returns its time."""
    now = time.time()
    event = pb.Event(id=event_id, profile_id=profile_id, type="cart_add", time=stamp(now))
    event.properties["cart_id"].category = f"cart-{event_id}"
    response = served.profiles.TrackEvents(iter([pb.TrackEventsRequest(events=[event])]), timeout=TIMEOUT)
    assert (response.accepted, response.refused) == (1, 0), response
    return now


def customers(served: Served, *profile_ids: str) -> None:
    rows = [{"id": pid, "consents": ["email"]} for pid in profile_ids]
    assert served.engine.upsert_profiles(rows).accepted == len(profile_ids)


def test_a_subscriber_that_disconnects_without_acknowledging_gets_the_decision_again(served: Served) -> None:
    customers(served, "p1")
    first_subscriber = Subscriber(served.triggers, visibility_timeout_seconds=1)
    sent = add_cart(served, "p1", "e1")
    first = first_subscriber.next()
    latency = time.time() - sent
    assert (first.trigger, first.profile_id, first.channel, first.attempt) == ("cart_now", "p1", "email", 1)
    assert first.decision.placement == "email_cart"
    assert [o.offer_id for o in first.decision.offers] == ["cart_reminder"]
    assert abs(first.decided_at.ToNanoseconds() / 1e9 - sent) < TIMEOUT
    first_subscriber.close()  # gone without acknowledging

    second_subscriber = Subscriber(served.triggers, visibility_timeout_seconds=1)
    again = second_subscriber.next()
    assert (again.decision.decision_id, again.attempt) == (first.decision.decision_id, 2)
    assert again.decision == first.decision
    acked = served.triggers.AckDecisions(
        pb.AckDecisionsRequest(decision_ids=[again.decision.decision_id]), timeout=TIMEOUT
    )
    assert acked.acknowledged == 1
    assert second_subscriber.nothing_for(2.5)  # past the visibility timeout: not again
    second_subscriber.close()
    assert served.engine.pending_deliveries == 0

    history = served.triggers.GetTriggerHistory(pb.GetTriggerHistoryRequest(profile_id="p1"), timeout=TIMEOUT)
    assert [(o.trigger, o.key, o.outcome) for o in history.outcomes] == [
        ("cart_now", "cart-e1", "delivered"),
        ("cart_now", "cart-e1", "acknowledged"),
    ]
    assert {o.decision_id for o in history.outcomes} == {first.decision.decision_id}
    again_ack = pb.AckDecisionsRequest(decision_ids=[first.decision.decision_id])
    assert served.triggers.AckDecisions(again_ack, timeout=TIMEOUT).acknowledged == 0
    ticker = served.server.triggers
    assert isinstance(ticker, TriggerServicer) and ticker.ticker.fired >= 1 and ticker.ticker.errors == 0
    print(f"event to received decision over gRPC (TrackEvents -> ticker -> stream): {latency * 1e3:.1f} ms")


def test_a_subscription_holds_at_most_max_in_flight_unacknowledged(served: Served) -> None:
    customers(served, "a", "b", "c")
    for n, pid in enumerate("abc"):
        add_cart(served, pid, f"e{n}")
    subscriber = Subscriber(served.triggers, max_in_flight=2, visibility_timeout_seconds=60)
    try:
        got = [subscriber.next(), subscriber.next()]
        assert subscriber.nothing_for(1.0)  # the third waits for room
        ack = pb.AckDecisionsRequest(decision_ids=[got[0].decision.decision_id])
        assert served.triggers.AckDecisions(ack, timeout=TIMEOUT).acknowledged == 1
        third = subscriber.next()
        assert {m.profile_id for m in [*got, third]} == {"a", "b", "c"}
        assert third.attempt == 1
    finally:
        subscriber.close()


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def subscribe_error(stub: decision_pb2_grpc.TriggerServiceStub, **request: object) -> grpc.RpcError:
    return rpc_error(
        lambda: next(stub.SubscribeDecisions(pb.SubscribeDecisionsRequest(**request), timeout=TIMEOUT))
    )


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"channel": "fax"}, "unknown channel 'fax'; channels are web, email, push"),
        ({}, "needs the channel"),
        (
            {"channel": "email", "visibility_timeout_seconds": 0.5},
            "visibility_timeout_seconds must be 1..3600",
        ),
        (
            {"channel": "email", "visibility_timeout_seconds": 3601},
            "visibility_timeout_seconds must be 1..3600",
        ),
        ({"channel": "email", "max_in_flight": 10_001}, "max_in_flight must be 1..10000"),
    ],
)
def test_subscription_bounds(served: Served, request_fields: dict[str, object], message: str) -> None:
    error = subscribe_error(served.triggers, **request_fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (error.details() or "")


def test_history_needs_a_profile_id(served: Served) -> None:
    error = rpc_error(
        lambda: served.triggers.GetTriggerHistory(pb.GetTriggerHistoryRequest(), timeout=TIMEOUT)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_subscriptions_take_slots_of_the_stream_budget(serve: Callable[..., Served]) -> None:
    served = serve(limits=Limits(max_streams=2))
    held = [Subscriber(served.triggers), Subscriber(served.triggers)]
    try:
        time.sleep(0.5)  # both calls have started on the server
        error = subscribe_error(served.triggers, channel="email")
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for subscriber in held:
            subscriber.close()


def test_a_subscription_needs_the_decision_token(serve: Callable[..., Served]) -> None:
    served = serve(tokens=Tokens(decision="secret"))
    error = subscribe_error(served.triggers, channel="email")
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    call = served.triggers.SubscribeDecisions(
        pb.SubscribeDecisionsRequest(channel="email"),
        timeout=1.0,
        metadata=[("authorization", "Bearer secret")],
    )
    assert (
        rpc_error(lambda: next(call)).code() == grpc.StatusCode.DEADLINE_EXCEEDED
    )  # let in: nothing to send


def test_stopping_the_server_ends_subscriptions_and_the_ticker(served: Served) -> None:
    subscriber = Subscriber(served.triggers)
    time.sleep(0.3)
    servicer = served.server.triggers
    assert isinstance(servicer, TriggerServicer) and servicer.ticker.running
    start = time.monotonic()
    served.server.stop(grace=5).wait(TIMEOUT)
    assert subscriber.ended.wait(TIMEOUT)
    assert time.monotonic() - start < 5  # ended at its next poll, not by the grace period
    assert not servicer.ticker.running and servicer.ticker.ticks > 0
    subscriber.close()


def test_two_servers_on_one_redis_deliver_each_triggered_decision_once(tmp_path: Path) -> None:
    """Events tracked on A start zero-delay timers that either server's ticker fires (each
    once); a subscriber on B receives every decision, disconnects without acknowledging, and a
    subscriber on A gets them all again (attempt 2); acknowledgements on B end them."""
    redis = RedisServer(tmp_path)
    redis.start()
    store = f"store: {{type: redis, url: '{redis.url}', key_prefix: shared-triggers, timeout_ms: 500}}\n"
    both: list[Served] = []
    try:
        for _ in range(2):
            engine = Engine(catalog(AT_ONCE, extra=store), seed=7)
            server, port = create_server("127.0.0.1:0", engine)
            server.start()
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            stubs = (
                decision_pb2_grpc.TriggerServiceStub(channel),
                decision_pb2_grpc.ProfileServiceStub(channel),
            )
            both.append(Served(server, engine, channel, *stubs))
        a, b = both
        profiles = [f"p{i}" for i in range(20)]
        customers(a, *profiles)
        on_b = Subscriber(b.triggers, visibility_timeout_seconds=1, max_in_flight=100)
        for i, profile in enumerate(profiles):
            add_cart(a, profile, f"e{i}")
        first = [on_b.next() for _ in profiles]
        assert sorted(m.profile_id for m in first) == sorted(profiles)
        assert len({m.decision.decision_id for m in first}) == len(profiles)
        assert {m.attempt for m in first} == {1}
        on_b.close()  # gone without acknowledging

        on_a = Subscriber(a.triggers, visibility_timeout_seconds=5, max_in_flight=100)
        again = [on_a.next() for _ in profiles]
        assert {m.decision.decision_id for m in again} == {m.decision.decision_id for m in first}
        assert {m.attempt for m in again} == {2}
        ack = pb.AckDecisionsRequest(decision_ids=[m.decision.decision_id for m in again])
        assert b.triggers.AckDecisions(ack, timeout=TIMEOUT).acknowledged == len(profiles)
        assert a.triggers.AckDecisions(ack, timeout=TIMEOUT).acknowledged == 0  # once, on any server
        assert on_a.nothing_for(1.5)
        on_a.close()
        assert (a.engine.pending_timers, b.engine.pending_deliveries) == (0, 0)
        fired = [
            s.server.triggers.ticker.fired for s in both if isinstance(s.server.triggers, TriggerServicer)
        ]
        assert sum(fired) == len(profiles), fired  # each timer fired once, by one of the two
        for profile in profiles:
            history = b.triggers.GetTriggerHistory(
                pb.GetTriggerHistoryRequest(profile_id=profile), timeout=TIMEOUT
            )
            assert [o.outcome for o in history.outcomes] == ["delivered", "acknowledged"]
    finally:
        for served in both:
            served.channel.close()
            served.server.stop(None).wait(5)
            served.engine.close()
        redis.stop()


def test_the_ticker_leaves_a_catalog_without_triggers_alone(inline_catalog) -> None:
    engine = Engine(inline_catalog, seed=7)
    server, _port = create_server("127.0.0.1:0", engine)
    server.start()
    try:
        servicer = server.triggers
        assert isinstance(servicer, TriggerServicer)
        time.sleep(0.5)  # ten periods of the ticker
        assert servicer.ticker.running and servicer.ticker.ticks == 0
    finally:
        server.stop(None).wait(5)


def test_triggered_decision_ids_carry_the_worker_as_inbound_ones_do(serve: Callable[..., Served]) -> None:
    served = serve(worker=3)
    customers(served, "p1")
    subscriber = Subscriber(served.triggers)
    try:
        add_cart(served, "p1", "e1")
        message = subscriber.next()
    finally:
        subscriber.close()
    wire_id = message.decision.decision_id
    assert DecisionIds(3).worker_of(wire_id) == 3
    decisions = decision_pb2_grpc.DecisionServiceStub(served.channel)
    outcome = pb.ReportOutcomeRequest(decision_id=wire_id, reward=1.0)
    decisions.ReportOutcome(outcome, timeout=TIMEOUT)  # the worker's own decision: taken
    other_worker = DecisionIds(4).to_wire(DecisionIds(3).engine_id(wire_id))
    ack = served.triggers.AckDecisions(
        pb.AckDecisionsRequest(decision_ids=[other_worker, wire_id]), timeout=TIMEOUT
    )
    assert ack.acknowledged == 1  # another worker's id counts nothing
    history = served.triggers.GetTriggerHistory(pb.GetTriggerHistoryRequest(profile_id="p1"), timeout=TIMEOUT)
    assert [o.decision_id for o in history.outcomes] == [wire_id, wire_id]
